"""Checks odeint_fallback against independent answers (float64, CPU; a few seconds):
  1. dopri5 on z' = -z, forward over [0, 3] and backward over [3, 0], against exp(-t), with the
     default mixed RMS norm and with a max norm passed as options={"norm": ...};
  2. odeint_adjoint's gradients against autograd through odeint's operations, on a tiny MLP
     with time input and a tuple state (z, integral of |f|^2) like the CNF's (z, log-det).

    /usr/bin/python3 bench/reference/check_odeint_fallback.py
"""
import math

import torch
from torch import nn

from odeint_fallback import last_nfe, odeint, odeint_adjoint

torch.set_default_dtype(torch.float64)


def max_norm(xs):
    return max(x.abs().max().item() for x in xs)


def check_decay():
    for tol, norm in ((1e-4, None), (1e-7, None), (1e-4, max_norm)):
        times = torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0])
        z0 = torch.tensor([1.0, 2.0])
        for ts, start in ((times, 0.0), (times.flip(0), 3.0)):
            y0 = z0 * math.exp(-start)
            zs = odeint(lambda t, z: -z, y0, ts, rtol=tol, atol=tol, options={"norm": norm} if norm else None)
            exact = torch.stack([z0 * math.exp(-t) for t in ts.tolist()])
            # the local tolerance controls the per-step error; allow the global error a factor of 10
            worst = ((zs - exact).abs() / (tol + tol * exact.abs())).max().item()
            print(f"decay tol {tol:g} {'max' if norm else 'rms'} norm from t={start:g}: max |err|/(atol+rtol|z|) = {worst:.3g}, nfe {last_nfe['forward']}")
            assert worst < 10, worst


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, t, state):
        z, _ = state
        dz = self.net(torch.cat([z, t.reshape(1, 1).expand(z.shape[0], 1)], 1))
        return dz, dz.pow(2).sum(1)


def check_adjoint():
    torch.manual_seed(3)
    func = Tiny()
    x = torch.randn(5, 2)
    times = torch.tensor([1.0, 0.4, 0.0])
    tol = 1e-10

    def loss_of(solver):
        zs, qs = solver(func, (x, torch.zeros(5)), times, rtol=tol, atol=tol)
        # uses an intermediate time too, so the adjoint's jump at t = 0.4 is exercised
        return zs[-1].pow(2).sum() + 0.5 * zs[1].sin().sum() + qs[-1].sum()

    reference = torch.autograd.grad(loss_of(odeint), tuple(func.parameters()))
    adjoint = torch.autograd.grad(loss_of(odeint_adjoint), tuple(func.parameters()))
    print(f"adjoint nfe forward {last_nfe['forward']} backward {last_nfe['backward']}")
    worst = max(((a - r).abs().max() / r.abs().max()).item() for a, r in zip(adjoint, reference))
    print(f"adjoint vs autograd-through-solver: max relative difference {worst:.3g}")
    assert worst < 1e-6, worst


if __name__ == "__main__":
    check_decay()
    check_adjoint()
    print("ok")
