"""A minimal stand-in for torchdiffeq's `odeint` and `odeint_adjoint` (dopri5 only), for machines
where torchdiffeq cannot be installed. It is NOT torchdiffeq: it follows the same published
algorithm and the same default step controller, so its step counts are expected to be close to,
not identical with, torchdiffeq's.

Solver: Dormand & Prince (1980) 5(4) with FSAL, as in Hairer, Norsett & Wanner, Solving ODEs I,
section II.5. Step controller as torchdiffeq's defaults:
  - error ratio = mixed norm of err / (atol + rtol * max(|y0|, |y1|)), the mixed norm being the
    largest root-mean-square over the state's tensors; a step is accepted when the ratio <= 1;
  - next step = h * min(10, max(0.9 * ratio^(-1/5), dfactor)), dfactor = 0.2 after a rejection
    and 1 after an acceptance (an accepted step never shrinks the next one); 10 for a zero ratio;
  - first step by Hairer's rule (section II.4) in the same norm, costing one evaluation;
  - steps are not clipped at the output times: the solver steps past them and reads the output
    from Shampine's dense output (Hairer's contd5), as torchdiffeq interpolates inside the last step.
Adjoint: a torch.autograd.Function whose backward integrates the augmented system
[z, a, a_theta]' = [f, -a^T df/dz, -a^T df/dtheta] backward in time with the same solver and
tolerances, the error norm covering all of it (torchdiffeq's default; it also carries a_t, which is
left out here since the times never need gradients in these benches).
Like torchdiffeq, `options={"norm": fn}` (and `adjoint_options` for the backward solve) replaces
the mixed norm; here fn receives the list of the state's tensors.
Each solve's evaluation count is kept in `last_nfe` (keys "forward" and "backward").
"""
import torch

# Dormand-Prince 5(4): nodes, stage matrix, fifth-order weights and (b - b_hat) over the 7 stages.
_C = [0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0]
_A = [[],
      [1 / 5],
      [3 / 40, 9 / 40],
      [44 / 45, -56 / 15, 32 / 9],
      [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
      [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]]
_B = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0]
_E = [71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40]
# Shampine's dense output coefficients d_i (Hairer's contd5).
_D = [-12715105075 / 11282082432, 0.0, 87487479700 / 32700410799, -10690763975 / 1880347072,
      701980252875 / 199316789632, -1453857185 / 822651844, 69997945 / 29380423]

SAFETY, IFACTOR, DFACTOR, ORDER = 0.9, 10.0, 0.2, 5

last_nfe = {"forward": 0, "backward": 0}


def _dense_weights(theta):
    """Stage weights w_i with y(t + theta*h) = y + h * sum w_i k_i (contd5 written per stage)."""
    weights = []
    for i in range(7):
        e1, e7 = float(i == 0), float(i == 6)
        inner = 2 * _B[i] - e1 - e7 + (1 - theta) * _D[i]
        weights.append(theta * _B[i] + theta * (1 - theta) * (e1 - _B[i] + theta * inner))
    return weights


def _combine(y, h, weights, ks):
    """y + h * sum_j weights_j * ks_j, tensor by tensor."""
    out = []
    for n, base in enumerate(y):
        acc = base
        for w, k in zip(weights, ks):
            if w != 0.0:
                acc = acc + (h * w) * k[n]
        out.append(acc)
    return out


def _mixed_norm(xs):
    """The largest root-mean-square over the tensors (torchdiffeq's norm for tuple states)."""
    return max((x.detach().pow(2).mean().sqrt().item() for x in xs if x.numel() > 0), default=0.0)


def _initial_step(f, t0, y0, f0, direction, span, rtol, atol, norm):
    """Hairer's first step (Solving ODEs I, II.4) in the given norm; one evaluation."""
    scale = [atol + rtol * y.detach().abs() for y in y0]
    d0 = norm([y.detach() / s for y, s in zip(y0, scale)])
    d1 = norm([k.detach() / s for k, s in zip(f0, scale)])
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    y1 = [y.detach() + direction * h0 * k.detach() for y, k in zip(y0, f0)]
    f1 = f(t0 + direction * h0, y1)
    d2 = norm([(a.detach() - b.detach()) / s for a, b, s in zip(f1, f0, scale)]) / h0
    if max(d1, d2) <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1 / ORDER)
    return min(100 * h0, h1, span)


def _next_factor(ratio, accepted):
    if ratio == 0.0:
        return IFACTOR
    if ratio != ratio or ratio == float("inf"):
        return DFACTOR
    floor = 1.0 if accepted else DFACTOR
    return min(IFACTOR, max(SAFETY * ratio ** (-1 / ORDER), floor))


def solve(f, y0, times, rtol, atol, norm=None, max_steps=100_000):
    """Integrates y' = f(t, y) (y a list of tensors, t a float) through the float `times`
    (monotone, from times[0]); returns (the state at each time, the number of evaluations).
    `norm` maps a list of tensors to a number (default: the mixed RMS norm)."""
    nfe = 0
    error_norm = _mixed_norm if norm is None else (lambda xs: float(norm(xs)))

    def eval_f(t, y):
        nonlocal nfe
        nfe += 1
        return list(f(t, y))

    outputs = [list(y0)]
    if len(times) == 1:
        return outputs, nfe
    direction = 1.0 if times[-1] > times[0] else -1.0
    t, y = times[0], list(y0)
    k1 = eval_f(t, y)
    h = direction * _initial_step(eval_f, t, y, k1, direction, abs(times[-1] - times[0]), rtol, atol,
                                       error_norm)
    step_start, step_y, step_h, step_ks = t, y, 0.0, None
    attempts = 0
    for target in times[1:]:
        while direction * (target - t) > 0:
            attempts += 1
            if attempts > max_steps:
                raise RuntimeError(f"dopri5: more than {max_steps} steps")
            if t + h == t:
                raise RuntimeError(f"dopri5: step size underflow at t = {t}")
            ks = [k1]
            for i in range(1, 6):
                ks.append(eval_f(t + _C[i] * h, _combine(y, h, _A[i], ks)))
            y1 = _combine(y, h, _B[:6], ks)
            k7 = eval_f(t + h, y1)
            ks.append(k7)
            err = _combine([torch.zeros_like(v) for v in y], h, _E, ks)
            scale = [atol + rtol * torch.maximum(a.detach().abs(), b.detach().abs()) for a, b in zip(y, y1)]
            ratio = error_norm([e.detach() / s for e, s in zip(err, scale)])
            accepted = ratio <= 1.0
            if accepted:
                step_start, step_y, step_h, step_ks = t, y, h, ks
                t, y, k1 = t + h, y1, k7
            h = h * _next_factor(ratio, accepted)
        if target == t:
            outputs.append(list(y))
        else:
            theta = (target - step_start) / step_h
            outputs.append(_combine(step_y, step_h, _dense_weights(theta), step_ks))
    return outputs, nfe


def _as_list(y):
    return list(y) if isinstance(y, (tuple, list)) else [y]


def _time_list(t):
    return [float(v) for v in t.detach().cpu().tolist()]


def _wrap(func, like):
    """func(t tensor, state) -> list of tensors, called with a float t and a list of tensors."""
    tuple_state = isinstance(like, (tuple, list))

    def call(t, y):
        tt = torch.tensor(t, dtype=y[0].dtype, device=y[0].device)
        return _as_list(func(tt, tuple(y) if tuple_state else y[0]))
    return call


def _stack(states, like):
    stacked = [torch.stack([s[n] for s in states]) for n in range(len(states[0]))]
    return tuple(stacked) if isinstance(like, (tuple, list)) else stacked[0]


def odeint(func, y0, t, rtol=1e-7, atol=1e-9, method="dopri5", options=None):
    """Like torchdiffeq.odeint (dopri5 only): the solution at each time in t, stacked; gradients
    flow through the solver's operations."""
    if method != "dopri5":
        raise ValueError(f"method: only 'dopri5' in the fallback, not {method!r}")
    norm = (options or {}).get("norm")
    states, nfe = solve(_wrap(func, y0), _as_list(y0), _time_list(t), rtol, atol, norm)
    last_nfe["forward"] = nfe
    return _stack(states, y0)


class _AdjointSolve(torch.autograd.Function):
    """Forward: solve without a graph. Backward: integrate [z, a, a_theta] back through the times."""

    @staticmethod
    def forward(ctx, call, times, rtol, atol, norms, n_state, *state_and_params):
        y0, params = list(state_and_params[:n_state]), list(state_and_params[n_state:])
        with torch.no_grad():
            states, nfe = solve(call, y0, times, rtol, atol, norms[0])
        last_nfe["forward"] = nfe
        ctx.call, ctx.times, ctx.rtol, ctx.atol, ctx.n_state = call, times, rtol, atol, n_state
        ctx.adjoint_norm = norms[1]
        ctx.params = params
        ctx.save_for_backward(*[torch.stack([s[n] for s in states]) for n in range(n_state)])
        return tuple(torch.stack([s[n] for s in states]) for n in range(n_state))

    @staticmethod
    def backward(ctx, *grads):
        call, times, n, params = ctx.call, ctx.times, ctx.n_state, ctx.params
        ys = ctx.saved_tensors
        grads = [g if g is not None else torch.zeros_like(y) for g, y in zip(grads, ys)]

        def augmented(t, s):
            z, a = s[:n], s[n:2 * n]
            with torch.enable_grad():
                z = [v.detach().requires_grad_(True) for v in z]
                fz = call(t, z)
                vjps = torch.autograd.grad(fz, z + params, grad_outputs=[-v for v in a], allow_unused=True)
            vjps = [g if g is not None else torch.zeros_like(x) for g, x in zip(vjps, z + params)]
            return [v.detach() for v in fz] + vjps

        nfe = 0
        a = [g[-1] for g in grads]
        a_params = [torch.zeros_like(p) for p in params]
        with torch.no_grad():
            for i in range(len(times) - 1, 0, -1):
                start = [y[i] for y in ys] + a + a_params
                states, used = solve(augmented, start, [times[i], times[i - 1]], ctx.rtol, ctx.atol,
                                     ctx.adjoint_norm)
                nfe += used
                end = states[-1]
                a = [v + g[i - 1] for v, g in zip(end[n:2 * n], grads)]
                a_params = end[2 * n:]
        last_nfe["backward"] = nfe
        return (None, None, None, None, None, None, *a, *a_params)


def odeint_adjoint(func, y0, t, rtol=1e-7, atol=1e-9, method="dopri5", options=None,
                   adjoint_params=None, adjoint_options=None):
    """Like torchdiffeq.odeint_adjoint (dopri5 only): gradients by the adjoint method, with
    respect to y0 and adjoint_params (default: func's parameters). The backward solve uses
    adjoint_options' norm if given, else the mixed norm over [z, a, a_theta]."""
    if method != "dopri5":
        raise ValueError(f"method: only 'dopri5' in the fallback, not {method!r}")
    params = tuple(func.parameters()) if adjoint_params is None else tuple(adjoint_params)
    y = _as_list(y0)
    norms = ((options or {}).get("norm"), (adjoint_options or {}).get("norm"))
    out = _AdjointSolve.apply(_wrap(func, y0), _time_list(t), rtol, atol, norms, len(y), *y, *params)
    return tuple(out) if isinstance(y0, (tuple, list)) else out[0]
