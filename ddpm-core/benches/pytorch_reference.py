"""PyTorch eager reference for `cargo bench --bench throughput`: the same model, optimizer and
sampler, measured the same way (median over repeats after a warm-up), on the CPU.

    python3 ddpm-core/benches/pytorch_reference.py [--quick]

Model: sinusoidal features of x, y (scale 25) and t (128 each) -> Linear(384, 128) -> GELU ->
3 residual blocks h + GELU(Linear(h)) -> Linear(128, 2). Adam (lr 1e-3, eps 1e-5 as burn),
gradient-norm clipping at 1.0 and an EMA of the weights (0.995), as ddpm-core trains by default.
"""

import math
import statistics
import sys
import time

import torch
from torch import nn

T = 1000


class Sinusoidal(nn.Module):
    def __init__(self, size, scale=1.0):
        super().__init__()
        half = size // 2
        freqs = torch.exp(-math.log(10000.0) / (half - 1) * torch.arange(half)) * scale
        self.register_buffer("freqs", freqs)

    def forward(self, x):
        angles = x.unsqueeze(-1) * self.freqs.unsqueeze(0)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Denoiser(nn.Module):
    def __init__(self, hidden=128, depth=3, emb=128):
        super().__init__()
        self.x_emb = Sinusoidal(emb, 25.0)
        self.t_emb = Sinusoidal(emb, 1.0)
        self.input = nn.Linear(3 * emb, hidden)
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.output = nn.Linear(hidden, 2)

    def forward(self, x, t):
        h = torch.cat([self.x_emb(x[:, 0]), self.x_emb(x[:, 1]), self.t_emb(t.float())], dim=-1)
        h = nn.functional.gelu(self.input(h))
        for block in self.blocks:
            h = h + nn.functional.gelu(block(h))
        return self.output(h)


betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
alphas = 1 - betas
alpha_bar = torch.cumprod(alphas, 0)
alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
post_var = betas * (1 - alpha_bar_prev) / (1 - alpha_bar)
coef1 = (betas * alpha_bar_prev.sqrt() / (1 - alpha_bar)).float()
coef2 = ((1 - alpha_bar_prev) * alphas.sqrt() / (1 - alpha_bar)).float()
sqrt_ab = alpha_bar.sqrt().float()
sqrt_1mab = (1 - alpha_bar).sqrt().float()
sqrt_recip = (1 / alpha_bar.sqrt()).float()
sqrt_recipm1 = (1 / alpha_bar - 1).sqrt().float()


def train_steps_per_second(batch, steps):
    model = Denoiser()
    ema = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-5)
    data = torch.randn(batch * steps, 2)
    order = torch.randperm(len(data))
    start = time.perf_counter()
    for i in range(steps):
        x0 = data[order[i * batch:(i + 1) * batch]]
        t = torch.randint(0, T, (batch,))
        noise = torch.randn_like(x0)
        xt = sqrt_ab[t].unsqueeze(1) * x0 + sqrt_1mab[t].unsqueeze(1) * noise
        loss = ((model(xt, t) - noise) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, 0.995)
            torch._foreach_add_(ema, [p.detach() for p in model.parameters()], alpha=0.005)
        loss.item()  # ddpm-core reads every loss to stop on NaN
    return steps / (time.perf_counter() - start)


@torch.no_grad()
def sample_seconds(n):
    model = Denoiser()
    start = time.perf_counter()
    x = torch.randn(n, 2)
    for t in reversed(range(T)):
        eps = model(x, torch.full((n,), t))
        x0 = sqrt_recip[t] * x - sqrt_recipm1[t] * eps
        mean = coef1[t] * x0 + coef2[t] * x
        x = mean + (post_var[t].sqrt().float() * torch.randn_like(x) if t > 0 else 0)
    return time.perf_counter() - start


def main():
    quick = "--quick" in sys.argv
    repeats = 3 if quick else 7
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {repeats}")
    for batch, steps in [(128, 300), (1024, 60)]:
        train_steps_per_second(batch, steps // 5)
        runs = [train_steps_per_second(batch, steps) for _ in range(repeats)]
        print(f"pytorch  train  batch {batch:>5}: {statistics.median(runs):8.1f} steps/s  [{min(runs):.1f}..{max(runs):.1f}]")
    runs = [sample_seconds(2000) for _ in range(1 if quick else 3)]
    print(f"pytorch  sample 2000 points x 1000 steps: {statistics.median(runs):6.2f} s  [{min(runs):.2f}..{max(runs):.2f}]")


if __name__ == "__main__":
    main()
