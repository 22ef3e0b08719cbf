#!/usr/bin/env python3
"""Reference schedules and sampler steps from HuggingFace diffusers, for tests/reference.rs.

Records, with the versions that made them:
- `schedules`: betas, alphas_cumprod and the DDPM posterior variance (`_get_variance`, fixed_small)
  at several t, for diffusers' linear, scaled_linear (our quadratic), squaredcos_cap_v2 (our
  cosine) and sigmoid schedules, at T = 1000 and at T = 200 with the beta range scaled by 1000 / T
  (what our `scale_to_timesteps` does; diffusers takes the scaled range as given);
- `add_noise`: `DDPMScheduler.add_noise` (the forward process q(x_t | x_0)) and `get_velocity`
  (the v target) on fixed x_0 and noise;
- `ddpm_steps`: one `DDPMScheduler.step` for each prediction type and variance type (fixed_small,
  fixed_large, learned_range), at several t, on fixed x_t, model output and noise (diffusers draws
  the step's noise itself: the script hands it the fixed noise instead);
- `ddim_steps`: one `DDIMScheduler.step` (50 of 1000 steps, leading spacing, alpha-bar of the
  final step = 1) for each prediction type and eta in {0, 0.5, 1}, noise passed as variance_noise.

Every case uses clip_sample=False: our clipping is tested separately. Inputs are drawn from a
fixed numpy seed and written into the table, so the Rust test feeds the very same numbers.

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch diffusers numpy
    /tmp/ref/bin/python ddpm-core/tests/reference/diffusers_schedules_and_steps.py
"""
import json
from pathlib import Path

import diffusers
import diffusers.schedulers.scheduling_ddpm as scheduling_ddpm
import numpy
import torch
from diffusers import DDIMScheduler, DDPMScheduler

OURS = {
    "linear": "linear",
    "scaled_linear": "quadratic",
    "squaredcos_cap_v2": "cosine",
    "sigmoid": "sigmoid",
}
PREDICTIONS = {"epsilon": "epsilon", "sample": "x0", "v_prediction": "v"}

rng = numpy.random.default_rng(20261129)


def draw(*shape):
    return rng.standard_normal(shape).astype(numpy.float32)


def values(tensor):
    return [float(v) for v in tensor.flatten().tolist()]


schedules = []
for big_t in (1000, 200):
    scale = 1000 / big_t
    for theirs, ours in OURS.items():
        s = DDPMScheduler(
            num_train_timesteps=big_t,
            beta_start=1e-4 * scale,
            beta_end=0.02 * scale,
            beta_schedule=theirs,
            clip_sample=False,
        )
        ts = sorted({0, 1, 2, 10, 50, big_t // 4, big_t // 2, big_t - 2, big_t - 1})
        schedules.append(
            {
                "diffusers": theirs,
                "schedule": ours,
                "T": big_t,
                "t": ts,
                "betas": [float(s.betas[t]) for t in ts],
                "alphas_cumprod": [float(s.alphas_cumprod[t]) for t in ts],
                # diffusers clamps beta-tilde_0 = 0 to 1e-20; only t > 0 is compared
                "posterior_variance": [float(s._get_variance(t)) for t in ts],
            }
        )

x0, noise = draw(4, 2), draw(4, 2)
base = DDPMScheduler(num_train_timesteps=1000, clip_sample=False)
add_noise = []
for t in (0, 10, 250, 999):
    tt = torch.full((4,), t, dtype=torch.long)
    add_noise.append(
        {
            "t": t,
            "x_t": values(base.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), tt)),
            "v": values(base.get_velocity(torch.from_numpy(x0), torch.from_numpy(noise), tt)),
        }
    )

x_t, output, variance_output, step_noise = draw(4, 2), draw(4, 2), draw(4, 2), draw(4, 2)
# the predicted-variance input of learned_range lies in [-1, 1] in practice
variance_output = numpy.tanh(variance_output)
scheduling_ddpm.randn_tensor = lambda *args, **kwargs: torch.from_numpy(step_noise)
ddpm_steps = []
for prediction, ours in PREDICTIONS.items():
    for variance_type in ("fixed_small", "fixed_large", "learned_range"):
        s = DDPMScheduler(
            num_train_timesteps=1000,
            clip_sample=False,
            prediction_type=prediction,
            variance_type=variance_type,
        )
        model_output = output
        if variance_type == "learned_range":
            model_output = numpy.concatenate([output, variance_output], axis=1)
        for t in (999, 500, 10, 1, 0):
            out = s.step(torch.from_numpy(model_output), t, torch.from_numpy(x_t))
            ddpm_steps.append(
                {
                    "prediction": ours,
                    "variance": variance_type,
                    "t": t,
                    "x_prev": values(out.prev_sample),
                    "x0": values(out.pred_original_sample),
                }
            )

ddim_steps = []
for prediction, ours in PREDICTIONS.items():
    s = DDIMScheduler(
        num_train_timesteps=1000,
        clip_sample=False,
        prediction_type=prediction,
        set_alpha_to_one=True,
    )
    s.set_timesteps(50)
    for eta in (0.0, 0.5, 1.0):
        for t in (980, 500, 20, 0):
            out = s.step(
                torch.from_numpy(output),
                t,
                torch.from_numpy(x_t),
                eta=eta,
                variance_noise=torch.from_numpy(step_noise),
            )
            prev = t - 1000 // 50
            ddim_steps.append(
                {
                    "prediction": ours,
                    "eta": eta,
                    "t": t,
                    "prev": prev if prev >= 0 else None,
                    "x_prev": values(out.prev_sample),
                    "x0": values(out.pred_original_sample),
                }
            )

table = {
    "made_by": "diffusers_schedules_and_steps.py",
    "versions": {
        "diffusers": diffusers.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    },
    "inputs": {
        "x0": values(torch.from_numpy(x0)),
        "noise": values(torch.from_numpy(noise)),
        "x_t": values(torch.from_numpy(x_t)),
        "output": values(torch.from_numpy(output)),
        "variance_output": values(torch.from_numpy(variance_output)),
        "step_noise": values(torch.from_numpy(step_noise)),
    },
    "schedules": schedules,
    "add_noise": add_noise,
    "ddpm_steps": ddpm_steps,
    "ddim_steps": ddim_steps,
}
path = Path(__file__).with_name("diffusers_schedules_and_steps.json")
path.write_text(json.dumps(table, indent=1) + "\n")
print(
    f"wrote {len(schedules)} schedules, {len(add_noise)} add_noise, {len(ddpm_steps)} DDPM and "
    f"{len(ddim_steps)} DDIM steps to {path}"
)
