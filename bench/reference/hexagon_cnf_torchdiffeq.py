"""The `cnf` bench section in PyTorch + torchdiffeq, for comparison where PyTorch is installed.

Same model and settings as bench/Bench/CnfBench.fs and examples/HexagonCnf (document 000): 6
Gaussians on a hexagon (radius 4, std 0.5), 16,384 samples z-scored with one mean and one std;
a CNF whose dynamics MLP takes [z; t] (3 -> 64 -> 64 -> 64 -> 2, tanh); exact trace (one autograd
call per dimension); Dopri5 at atol = rtol = 1e-4 from t = 1 back to 0; gradients by the adjoint
method (torchdiffeq.odeint_adjoint); AdamW lr 2e-3, weight decay 1e-5; batch 1024; float32.
Prints, in the bench's `name value unit` format, the median seconds of 10 training iterations after
3 warm-up iterations and their mean forward and backward NFE.

    pip install torch torchdiffeq
    python bench/reference/hexagon_cnf_torchdiffeq.py [--threads 2] [--device cpu] [--max-norm]

--max-norm swaps torchdiffeq's default error norm (largest RMS over the state's tensors) for the
max norm that Flows' Dopri5 uses, in the forward and the adjoint solve, so that the step
controllers match.

Without torchdiffeq it uses odeint_fallback.py (same algorithm and default step controller, not
torchdiffeq itself) and says so; see README.md in this folder.
"""
import argparse
import math
import statistics
import time

import numpy as np
import torch
from torch import nn

try:
    from torchdiffeq import odeint_adjoint
    SOLVER = "torchdiffeq"
except ImportError:  # e.g. Debian's python3-torch without PyPI: the stand-in in this folder
    from odeint_fallback import odeint_adjoint
    SOLVER = "odeint_fallback (a stand-in for torchdiffeq, not torchdiffeq itself)"

WARMUP, TIMED, BATCH = 3, 10, 1024
NAME = "cnf.hexagon.3-64-64-64-2.batch1024.dopri5-1e-4.adjoint"


def hexagon(rng, n):
    """n samples of 6 Gaussians (std 0.5) at the vertices of a hexagon of radius 4."""
    k = rng.integers(0, 6, n)
    angle = 2 * math.pi * k / 6
    centres = np.stack([4 * np.cos(angle), 4 * np.sin(angle)], 1)
    return centres + 0.5 * rng.standard_normal((n, 2))


class CnfDynamics(nn.Module):
    """d[z, delta]/dt = [f(z, t), tr(df/dz)] with f an MLP on [z; t]; counts its evaluations."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(3, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
            nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
        self.nfe = 0

    def forward(self, t, state):
        z, _ = state
        self.nfe += 1
        with torch.enable_grad():
            z = z.requires_grad_(True)
            dz = self.net(torch.cat([z, t.reshape(1, 1).expand(z.shape[0], 1)], 1))
            trace = sum(torch.autograd.grad(dz[:, i].sum(), z, create_graph=True)[0][:, i]
                        for i in range(z.shape[1]))
        return dz, trace


def max_norm(state):
    """The largest |element| of a tensor or of a (nested) tuple of tensors."""
    if isinstance(state, (tuple, list)):
        return torch.stack([max_norm(part) for part in state]).max()
    return state.abs().max() if state.numel() > 0 else state.new_zeros(())


def log_prob(dynamics, x, norm_options):
    """log p(x) = log N(z(0); 0, I) + integral from 1 to 0 of tr(df/dz) dt."""
    times = torch.tensor([1.0, 0.0], device=x.device)
    zs, deltas = odeint_adjoint(dynamics, (x, torch.zeros(x.shape[0], device=x.device)), times,
                                method="dopri5", atol=1e-4, rtol=1e-4,
                                options=dict(norm_options), adjoint_options=dict(norm_options))
    z0, delta = zs[-1], deltas[-1]
    return -0.5 * (z0.pow(2).sum(1) + 2 * math.log(2 * math.pi)) + delta


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-norm", action="store_true")
    args = parser.parse_args()
    norm_options = {"norm": max_norm} if args.max_norm else {}
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    rng = np.random.default_rng(1)
    data = hexagon(rng, 1 << 14)
    data = (data - data.mean()) / data.std(ddof=1)
    rows = torch.tensor(data, dtype=torch.float32, device=args.device)

    dynamics = CnfDynamics().to(args.device)
    optimiser = torch.optim.AdamW(dynamics.parameters(), lr=2e-3, weight_decay=1e-5)
    seconds, forward, backward = [], [], []
    for step in range(WARMUP + TIMED):
        start = time.perf_counter()
        batch = rows[torch.randint(0, rows.shape[0], (BATCH,), device=args.device)]
        dynamics.nfe = 0
        loss = -log_prob(dynamics, batch, norm_options).mean()
        nfe_forward = dynamics.nfe
        dynamics.nfe = 0
        optimiser.zero_grad()
        loss.backward()
        nfe_backward = dynamics.nfe
        optimiser.step()
        if args.device != "cpu":
            torch.cuda.synchronize()
        if step >= WARMUP:
            seconds.append(time.perf_counter() - start)
            forward.append(nfe_forward)
            backward.append(nfe_backward)

    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, solver {SOLVER}, "
          f"error norm {'max' if args.max_norm else 'default (mixed RMS)'}")
    print(f"# {TIMED} training iterations after {WARMUP} warm-up iterations (float32, exact trace)")
    print(f"{NAME}.seconds_per_iteration {statistics.median(seconds):.3g} s")
    print(f"{NAME}.nfe_forward {statistics.mean(forward):.3g} evaluations")
    print(f"{NAME}.nfe_backward {statistics.mean(backward):.3g} evaluations")


if __name__ == "__main__":
    main()
