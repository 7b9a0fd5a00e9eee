"""PyTorch references for bench/CudaCheck: the same models and training step, timed the same way
(median of timed steps after warm-up, each step ending in loss.item(), which waits for the GPU).

  python flows_reference.py [--device cuda] [--large-batch 65536]

Models: two-moons (2 affine coupling blocks, MLP [64, 64] ReLU conditioners, swaps, learnable
diagonal Gaussian base, batch 512) and the large RQ-NSF (8 rational-quadratic spline couplings on
16 features, MLP [512, 512] ReLU, 8 bins on [-3, 3] with identity tails, batch 65,536).
Plain PyTorch, no flow library, float32, default (non-TF32) matmul precision as in Flows.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False


def mlp(inputs, hidden, outputs):
    layers, width = [], inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    last = nn.Linear(width, outputs)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class AffineCoupling(nn.Module):
    """y_b = x_b * exp(s(x_a)) + t(x_a); the inverse (density direction) is what training runs."""

    def __init__(self, dim, hidden, flip):
        super().__init__()
        self.a = dim // 2
        self.flip = flip
        self.net = mlp(self.a, hidden, 2 * (dim - self.a))

    def inverse(self, y):
        if self.flip:
            y = y.flip(1)
        ya, yb = y[:, : self.a], y[:, self.a:]
        shift, log_scale = self.net(ya).chunk(2, dim=1)
        x = torch.cat([ya, (yb - shift) * torch.exp(-log_scale)], dim=1)
        if self.flip:
            x = x.flip(1)
        return x, -log_scale.sum(1)


def rq_spline_inverse(y, w, h, d, bound, min_size=1e-3, min_derivative=1e-3):
    """Inverse rational-quadratic spline on [-bound, bound], identity outside (Durkan et al. 2019)."""
    k = w.shape[-1]
    inside = (y > -bound) & (y < bound)
    w = min_size + (1 - min_size * k) * F.softmax(w, dim=-1)
    h = min_size + (1 - min_size * k) * F.softmax(h, dim=-1)
    d = min_derivative + F.softplus(d)
    d = F.pad(d, (1, 1), value=1.0)
    cw = F.pad(torch.cumsum(w, -1), (1, 0)) * 2 * bound - bound
    ch = F.pad(torch.cumsum(h, -1), (1, 0)) * 2 * bound - bound
    cw[..., -1] = bound
    ch[..., -1] = bound
    yc = y.clamp(-bound, bound)
    idx = (torch.searchsorted(ch[..., 1:-1].contiguous(), yc.unsqueeze(-1))).clamp(0, k - 1)
    g = lambda t: t.gather(-1, idx).squeeze(-1)
    x0, bw = g(cw), g(cw[..., 1:] - cw[..., :-1])
    y0, bh = g(ch), g(ch[..., 1:] - ch[..., :-1])
    d0, d1 = g(d[..., :-1]), g(d[..., 1:])
    s = bh / bw
    dy = yc - y0
    a = dy * (d0 + d1 - 2 * s) + bh * (s - d0)
    b = bh * d0 - dy * (d0 + d1 - 2 * s)
    c = -s * dy
    disc = (b * b - 4 * a * c).clamp_min(0)
    theta = (2 * c) / (-b - torch.sqrt(disc))
    x = theta * bw + x0
    tt = theta * (1 - theta)
    denom = s + (d0 + d1 - 2 * s) * tt
    deriv = s * s * (d1 * theta ** 2 + 2 * s * tt + d0 * (1 - theta) ** 2) / denom ** 2
    x = torch.where(inside, x, y)
    logdet = torch.where(inside, -torch.log(deriv), torch.zeros_like(y))
    return x, logdet


class SplineCoupling(nn.Module):
    def __init__(self, dim, hidden, bins, bound, flip):
        super().__init__()
        self.a, self.bins, self.bound, self.flip = dim // 2, bins, bound, flip
        self.b = dim - self.a
        self.net = mlp(self.a, hidden, self.b * (3 * bins - 1))

    def inverse(self, y):
        if self.flip:
            y = y.flip(1)
        ya, yb = y[:, : self.a], y[:, self.a:]
        p = self.net(ya).view(y.shape[0], self.b, 3 * self.bins - 1)
        w, h, d = p[..., : self.bins], p[..., self.bins: 2 * self.bins], p[..., 2 * self.bins:]
        xb, ld = rq_spline_inverse(yb, w, h, d, self.bound)
        x = torch.cat([ya, xb], dim=1)
        if self.flip:
            x = x.flip(1)
        return x, ld.sum(1)


class Flow(nn.Module):
    def __init__(self, layers, dim, learn_base):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.loc = nn.Parameter(torch.zeros(dim), requires_grad=learn_base)
        self.log_scale = nn.Parameter(torch.zeros(dim), requires_grad=learn_base)

    def log_prob(self, x):
        total = torch.zeros(x.shape[0], device=x.device)
        for layer in reversed(self.layers):
            x, ld = layer.inverse(x)
            total = total + ld
        u = (x - self.loc) * torch.exp(-self.log_scale)
        base = -0.5 * (u * u).sum(1) - self.log_scale.sum() - 0.5 * x.shape[1] * math.log(2 * math.pi)
        return base + total


def two_moons(n, generator):
    t = torch.rand(n, generator=generator) * math.pi
    upper = torch.rand(n, generator=generator) < 0.5
    x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    return torch.stack([x, y], 1) + 0.1 * torch.randn(n, 2, generator=generator)


def time_steps(flow, batch, warmup, steps):
    opt = torch.optim.Adam([p for p in flow.parameters() if p.requires_grad], lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = -flow.log_prob(batch).mean()
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--large-batch", type=int, default=65536)
    args = parser.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)

    moons = Flow([AffineCoupling(2, [64, 64], flip=i % 2 == 1) for i in range(4)], 2, True).to(dev)
    s = time_steps(moons, two_moons(512, g).to(dev), 20, 50)
    print(f"torch.two_moons_step[{args.device}] {s * 1e3:.3f} ms/step ({1 / s:.1f} steps/s)")

    large = Flow([SplineCoupling(16, [512, 512], 8, 3.0, flip=i % 2 == 1) for i in range(8)], 16, False).to(dev)
    s = time_steps(large, torch.randn(args.large_batch, 16, generator=g).to(dev), 2, 7)
    print(f"torch.rqnsf8_h512_b{args.large_batch}_d16_step[{args.device}] {s * 1e3:.3f} ms/step ({1 / s:.1f} steps/s)")


if __name__ == "__main__":
    main()
