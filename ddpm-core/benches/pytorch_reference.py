"""PyTorch eager reference for `cargo bench --bench throughput`: the same models, optimizer and
samplers as ddpm-core, measured the same way (median [min..max] over repeats, after a warm-up),
on the CPU.

    python3 ddpm-core/benches/pytorch_reference.py [--quick] [--threads 1,2]
        [--only mlp-train|mlp-sample|unet-train|unet-sample ...]

Every workload runs at each thread count of --threads (torch.set_num_threads): a warm-up (a
fifth of the training steps, a short chain for sampling), then the timed repeats; its row
reports the best count and lists the median at each. --quick: 3 repeats of training instead of
7, 1 of sampling instead of 3. --only keeps the named groups of rows (repeatable), as in the
Rust benchmark. Rows:

  train  batch 128 / 1024        optimizer steps/s of the 2-D MLP (300 / 60 steps a run)
  sample DDPM 2000 x 1000        seconds to draw 2000 points by ancestral sampling, all 1000 steps
  sample DDIM 2000 x 50          seconds to draw 2000 points by DDIM, 50 steps
  unet   train 8x8 digits        images/s training the digits U-Net, batch 128 (30 steps a run)
  unet   sample 64 digits w=1/3  seconds to draw 64 digits (class i % 10) by DDIM, 50 steps,
                                 at guidance scale 1 (one pass a step) and 3 (two)

MLP (DenoiserConfig::default): sinusoidal features of x, y (scale 25) and t (128 each) ->
Linear(384, 128) -> GELU -> 3 residual blocks h + GELU(Linear(h)) -> Linear(128, 2), trained on
the noise (L_simple) with TrainConfig::default: Adam (lr 1e-3, eps 1e-5 as burn), the gradient
of each parameter tensor clipped to norm 1 (burn's GradientClippingConfig::Norm clips per tensor,
not globally as clip_grad_norm_ does) and an EMA of the weights (0.995). Training throughput uses
moons points; the samplers use the EMA weights of a model first trained, untimed, on ddpm-core's
moons (8000 points, 20 epochs of batch 128: 63 steps an epoch, the last of 64 points). DDPM:
fixed-small variance; DDIM: eta 0, trailing spacing; both clip predicted x_0 to [-4, 4]
(data::DATA_RANGE, SamplingConfig's default), DDIM re-deriving the noise from the clipped x_0.

U-Net (ImageExperimentConfig::digits): channels [32, 64], 1 block per level, no attention,
8 groups, embedding 64, 10 classes plus the null class; trained on random 1x8x8 images in
[-1, 1] with random labels, 10% of them dropped to the null class (TrainConfig's label_dropout),
Adam lr 2e-3, clip 1, EMA 0.99. Sampling as the image pipeline does, through sampling::Guided:
at w = 1 one forward pass per step over the classes; at w = 3 one over the doubled batch (the
classes, then null classes), combined as null + w (cond - null); DDIM eta 0, trailing, x_0 clipped to [-1, 1] (digits'
clip_x0). The weights are freshly initialised: the time does not depend on them.
"""

import argparse
import math
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

T = 1000
DATA_RANGE = 4.0  # data::DATA_RANGE, SamplingConfig's default clip of predicted x_0
DIGITS_CLIP = 1.0  # ImageExperimentConfig::digits' sampling.clip_x0
GROUPS = ("mlp-train", "mlp-sample", "unet-train", "unet-sample")  # as throughput.rs's --only
DIGITS_UNET_PARAMS = 595_937  # ddpm-core's digits U-Net (docs/experiments.md, unet.rs's shapes)

# The linear schedule (ScheduleConfig::default), in f64 as ddpm-core keeps it.
_betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
_ab = torch.cumprod(1 - _betas, 0)
_ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), _ab[:-1]])
AB = _ab.tolist()
SQRT_AB, SQRT_1MAB = _ab.sqrt().tolist(), (1 - _ab).sqrt().tolist()
SQRT_RECIP, SQRT_RECIPM1 = (1 / _ab.sqrt()).tolist(), (1 / _ab - 1).sqrt().tolist()
COEF1 = (_betas * _ab_prev.sqrt() / (1 - _ab)).tolist()
COEF2 = ((1 - _ab_prev) * (1 - _betas).sqrt() / (1 - _ab)).tolist()
SIGMA = (_betas * (1 - _ab_prev) / (1 - _ab)).sqrt().tolist()  # fixed-small: sqrt(beta-tilde)
SQRT_AB_T, SQRT_1MAB_T = _ab.sqrt().float(), (1 - _ab).sqrt().float()  # indexed per sample


def sinusoidal(x, size, scale=1.0):
    """embedding::sinusoidal_embedding: [..., sin(x w_i), ..., cos(x w_i)] with
    w_i = scale 10000^(-i / (size/2 - 1)), a new last axis of `size`."""
    half = size // 2
    freqs = torch.exp(torch.arange(half) * (-math.log(10000.0) / (half - 1))) * scale
    angles = x.unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], -1)


class Mlp(nn.Module):
    """model::MlpDenoiser with DenoiserConfig::default."""

    def __init__(self, hidden=128, depth=3, emb=128, scale=25.0):
        super().__init__()
        self.emb, self.scale = emb, scale
        self.input = nn.Linear(3 * emb, hidden)
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.output = nn.Linear(hidden, 2)

    def forward(self, x, t):
        """t: [batch] time indices, or [1] for all (its features computed once, as forward_at)."""
        time = sinusoidal(t.float(), self.emb).expand(len(x), -1)
        h = torch.cat([sinusoidal(x, self.emb, self.scale).flatten(1), time], 1)
        h = F.gelu(self.input(h))
        for block in self.blocks:
            h = h + F.gelu(block(h))
        return self.output(h)


class ResBlock(nn.Module):
    """unet.rs's ResBlock (dropout 0 left out): GroupNorm -> SiLU -> conv -> + embedding ->
    GroupNorm -> SiLU -> conv, plus the input (a 1x1 conv when the width changes)."""

    def __init__(self, c_in, c_out, emb, groups):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.embedding = nn.Linear(emb, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.embedding(F.silu(emb))[:, :, None, None]
        return self.shortcut(x) + self.conv2(F.silu(self.norm2(h)))


class UNet(nn.Module):
    """model::UNet without attention (off in the digits config), built step for step as
    UNetConfig::init; defaults are ImageExperimentConfig::digits' on 1x8x8 images."""

    def __init__(self, channels=(32, 64), blocks=1, emb=64, groups=8, classes=10, in_ch=1):
        super().__init__()
        self.emb, self.num_classes = emb, classes
        self.time_in, self.time_out = nn.Linear(emb, emb), nn.Linear(emb, emb)
        self.class_table = nn.Embedding(classes + 1, emb) if classes else None
        self.input = nn.Conv2d(in_ch, channels[0], 3, padding=1)
        block = lambda c_in, c_out: ResBlock(c_in, c_out, emb, groups)
        self.down, skips, width = nn.ModuleList(), [channels[0]], channels[0]
        for level, c in enumerate(channels):
            for _ in range(blocks):
                self.down.append(block(width, c))
                width = c
                skips.append(width)
            if level + 1 < len(channels):
                self.down.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skips.append(width)
        self.middle = nn.ModuleList([block(width, width), block(width, width)])
        self.up = nn.ModuleList()
        for level in reversed(range(len(channels))):
            for _ in range(blocks + 1):
                self.up.append(block(width + skips.pop(), channels[level]))
                width = channels[level]
            if level > 0:
                self.up.append(nn.Conv2d(width, width, 3, padding=1))
        self.out_norm = nn.GroupNorm(groups, channels[0])
        self.output = nn.Conv2d(channels[0], in_ch, 3, padding=1)

    def forward(self, x, t, cls=None):
        emb = self.time_out(F.silu(self.time_in(sinusoidal(t.float(), self.emb))))
        if self.class_table is not None:
            emb = emb + self.class_table(torch.full_like(t, self.num_classes) if cls is None else cls)
        h = self.input(x)
        skips = [h]
        for step in self.down:
            h = step(h, emb) if isinstance(step, ResBlock) else step(h)
            skips.append(h)
        for block in self.middle:
            h = block(h, emb)
        for step in self.up:
            if isinstance(step, ResBlock):
                h = step(torch.cat([h, skips.pop()], 1), emb)
            else:  # nearest upsampling to the size of the skip this level joins, then a conv
                h = step(F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest"))
        return self.output(F.silu(self.out_norm(h)))


class Trainer:
    """train.rs's optimizer step: burn's Adam (betas 0.9, 0.999, eps 1e-5; torch's multi-tensor
    form, a little faster on the CPU), each parameter tensor's gradient clipped to L2 norm
    `clip`, then ema = decay ema + (1 - decay) w."""

    def __init__(self, model, lr, decay, clip=1.0):
        self.params = list(model.parameters())
        self.opt = torch.optim.Adam(self.params, lr=lr, eps=1e-5, foreach=True)
        self.ema = [p.detach().clone() for p in self.params]
        self.decay, self.clip = decay, clip

    def step(self, loss):
        self.opt.zero_grad()
        loss.backward()
        grads = [p.grad for p in self.params]
        coef = torch._foreach_norm(grads)  # clip / (norm + tiny), at most 1 (burn's clip_by_norm)
        torch._foreach_add_(coef, torch.finfo(torch.float32).tiny)
        torch._foreach_reciprocal_(coef)
        torch._foreach_mul_(coef, self.clip)
        torch._foreach_clamp_max_(coef, 1.0)
        torch._foreach_mul_(grads, coef)
        self.opt.step()
        with torch.no_grad():
            torch._foreach_mul_(self.ema, self.decay)
            torch._foreach_add_(self.ema, [p.detach() for p in self.params], alpha=1 - self.decay)
        return loss.item()  # ddpm-core reads every loss to stop on NaN


def fit(model, trainer, data, batch, epochs, labels=None, label_dropout=0.1):
    """train::train's loop with L_simple: shuffled mini-batches (the last may be short), a
    timestep and noise per example; a conditional model's labels dropped to the null class with
    probability `label_dropout`. Returns the losses."""
    losses = []
    for _ in range(epochs):
        for idx in torch.randperm(len(data)).split(batch):
            x0 = data[idx]
            t = torch.randint(0, T, (len(idx),))
            noise = torch.randn_like(x0)
            shape = (-1,) + (1,) * (x0.dim() - 1)
            x_t = SQRT_AB_T[t].view(shape) * x0 + SQRT_1MAB_T[t].view(shape) * noise
            cond = ()
            if labels is not None:
                drop = torch.rand(len(idx)) < label_dropout
                cond = (torch.where(drop, model.num_classes, labels[idx]),)
            losses.append(trainer.step(((model(x_t, t, *cond) - noise) ** 2).mean()))
    return losses


def moons(n, generator=None):
    """data::toy's moons: half the points on each moon, noise 0.05, centred at (0.5, 0.25) and
    scaled by 1 / 0.7 (same distribution, another random stream than ddpm-core's StdRng)."""
    lower = torch.arange(n) >= n // 2
    theta = torch.rand(n, generator=generator, dtype=torch.float64) * math.pi
    x = torch.where(lower, 1 - theta.cos(), theta.cos())
    y = torch.where(lower, 0.5 - theta.sin(), theta.sin())
    raw = torch.stack([x, y], 1) + 0.05 * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return ((raw - torch.tensor([0.5, 0.25], dtype=torch.float64)) / 0.7).float()


def trailing(n):
    """ddim::timestep_subsequence with TimestepSpacing::Trailing, noisiest first."""
    delta = (T - T / n) - T
    return sorted({round(T + i * delta) - 1 for i in range(n)}, reverse=True)


@torch.inference_mode()
def ddpm_sample(eps_fn, shape, clip, first=T - 1):
    """DdpmSampler (fixed-small variance, x_0 clipped) from x_T ~ N(0, I) at step `first`."""
    x = torch.randn(shape)
    for t in range(first, -1, -1):
        x0 = (SQRT_RECIP[t] * x - SQRT_RECIPM1[t] * eps_fn(x, t)).clamp(-clip, clip)
        x = COEF1[t] * x0 + COEF2[t] * x
        if t > 0:
            x = x + SIGMA[t] * torch.randn_like(x)
    return x


@torch.inference_mode()
def ddim_sample(eps_fn, shape, steps, clip):
    """DdimSampler with eta 0 and trailing spacing: x_0 clipped, the noise re-derived from it."""
    ts = trailing(steps)
    x = torch.randn(shape)
    for i, t in enumerate(ts):
        ab_prev = AB[ts[i + 1]] if i + 1 < len(ts) else 1.0
        x0 = (SQRT_RECIP[t] * x - SQRT_RECIPM1[t] * eps_fn(x, t)).clamp(-clip, clip)
        eps = (x - SQRT_AB[t] * x0) / SQRT_1MAB[t]
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev, 0.0)) * eps
    return x


def guided(model, classes, w=1.0):
    """sampling::Guided: at w = 1 the answer is the conditional pass alone, so one forward over
    the classes; otherwise one forward over the doubled batch (classes, then null classes),
    combined as null + w (cond - null)."""
    doubled = torch.cat([classes, torch.full_like(classes, model.num_classes)])

    def eps(x, t):
        if w == 1.0:
            return model(x, torch.full((len(classes),), t), classes)
        both = model(torch.cat([x, x]), torch.full((len(doubled),), t), doubled)
        cond, null = both.chunk(2)
        return null + (cond - null) * w

    return eps


def seconds(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def mlp_train_rate(batch, steps):
    model = Mlp()
    trainer, data = Trainer(model, 1e-3, 0.995), moons(batch * steps)
    return steps / seconds(fit, model, trainer, data, batch, 1)


def unet_train_rate(batch, steps):
    model = UNet()
    trainer = Trainer(model, 2e-3, 0.99)
    data = torch.rand(batch * steps, 1, 8, 8) * 2 - 1
    labels = torch.randint(0, model.num_classes, (batch * steps,))
    return batch * steps / seconds(fit, model, trainer, data, batch, 1, labels)


def trained_mlp():
    """The default MLP trained on 8000 moons points for 20 epochs, with its EMA weights."""
    model = Mlp()
    trainer = Trainer(model, 1e-3, 0.995)
    start = time.perf_counter()
    losses = fit(model, trainer, moons(8000, torch.Generator().manual_seed(0)), 128, 20)
    with torch.no_grad():
        torch._foreach_copy_(trainer.params, trainer.ema)
    print(f"trained the MLP on moons (untimed): {len(losses)} steps in {time.perf_counter() - start:.1f} s,"
          f" last epoch's mean loss {statistics.mean(losses[-63:]):.3f}")
    return model


def report(label, unit, fmt, run, warmup, repeats, threads, higher_is_better=False):
    """At each thread count: `warmup()`, then `repeats` runs; print the best count's row."""
    width, digits = fmt
    runs = {}
    for n in threads:
        torch.set_num_threads(n)
        warmup()
        runs[n] = [run() for _ in range(repeats)]
    medians = {n: statistics.median(r) for n, r in runs.items()}
    best = (max if higher_is_better else min)(threads, key=medians.get)
    lo, hi = min(runs[best]), max(runs[best])
    per = ", ".join(f"{n}: {m:.{digits}f}" for n, m in medians.items())
    print(f"pytorch  {label}: {medians[best]:{width}.{digits}f} {unit}  [{lo:.{digits}f}..{hi:.{digits}f}]"
          f"  (best of threads {','.join(map(str, threads))}: {best})  threads {per}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", default="1,2", help="thread counts to try (default 1,2)")
    parser.add_argument("--only", action="append", choices=GROUPS, metavar="GROUP",
                        help=f"run only this group of rows (repeatable): {', '.join(GROUPS)}")
    args = parser.parse_args()
    wanted = lambda group: not args.only or group in args.only
    threads = [int(n) for n in args.threads.split(",")]
    repeats, sample_repeats = (3, 1) if args.quick else (7, 3)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {args.threads}, repeats {repeats} "
          f"(sampling {sample_repeats}), median [min..max]")

    if wanted("mlp-train"):
        mlp_training_rows(repeats, threads)
    torch.set_num_threads(max(threads))
    if wanted("mlp-sample"):
        mlp_sampling_rows(sample_repeats, threads)
    if wanted("unet-train") or wanted("unet-sample"):
        unet_rows(wanted, repeats, sample_repeats, threads)


def mlp_training_rows(repeats, threads):
    for batch, steps in [(128, 300), (1024, 60)]:
        report(f"train  batch {batch:>5}", "steps/s", (8, 1), lambda: mlp_train_rate(batch, steps),
               lambda: mlp_train_rate(batch, steps // 5), repeats, threads, higher_is_better=True)


def mlp_sampling_rows(sample_repeats, threads):
    mlp = trained_mlp()
    eps = lambda x, t: mlp(x, torch.tensor([t]))
    report("sample DDPM 2000 x 1000 (trained)", "s", (6, 2),
           lambda: seconds(ddpm_sample, eps, (2000, 2), DATA_RANGE),
           lambda: ddpm_sample(eps, (2000, 2), DATA_RANGE, first=99), sample_repeats, threads)
    report("sample DDIM 2000 x 50 (trained)", "s", (6, 3),
           lambda: seconds(ddim_sample, eps, (2000, 2), 50, DATA_RANGE),
           lambda: ddim_sample(eps, (2000, 2), 50, DATA_RANGE), sample_repeats, threads)


def unet_rows(wanted, repeats, sample_repeats, threads):
    unet = UNet()
    params = sum(p.numel() for p in unet.parameters())
    check = "equal" if params == DIGITS_UNET_PARAMS else "DIFFERENT"
    print(f"unet parameters: {params} (ddpm-core's digits U-Net: {DIGITS_UNET_PARAMS}, {check})")
    if wanted("unet-train"):
        report("unet   train 8x8 digits batch 128", "images/s", (8, 1),
               lambda: unet_train_rate(128, 30), lambda: unet_train_rate(128, 6), repeats, threads,
               higher_is_better=True)
    if not wanted("unet-sample"):
        return
    for w in (1.0, 3.0):
        digits = guided(unet, torch.arange(64) % 10, w)
        report(f"unet   sample 64 digits DDIM 50 w={w:g}", "s", (6, 3),
               lambda: seconds(ddim_sample, digits, (64, 1, 8, 8), 50, DIGITS_CLIP),
               lambda: ddim_sample(digits, (64, 1, 8, 8), 5, DIGITS_CLIP), sample_repeats, threads)


if __name__ == "__main__":
    main()
