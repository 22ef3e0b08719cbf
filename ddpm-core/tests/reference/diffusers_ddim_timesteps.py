#!/usr/bin/env python3
"""Reference DDIM timestep sequences from HuggingFace diffusers, for tests/ddim_timesteps.rs.

For T in {200, 1000}, every number of steps n in 1..=100 and each spacing (linspace, leading,
trailing), records `DDIMScheduler(num_train_timesteps=T, timestep_spacing=...).set_timesteps(n)`:
the 0-based timesteps diffusers visits, noisiest first. Written to
diffusers_ddim_timesteps.json beside this script, with the versions that made it.

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch diffusers numpy
    /tmp/ref/bin/python ddpm-core/tests/reference/diffusers_ddim_timesteps.py
"""
import json
from pathlib import Path

import diffusers
import numpy
import torch
from diffusers import DDIMScheduler

cases = []
for big_t in (200, 1000):
    for spacing in ("linspace", "leading", "trailing"):
        scheduler = DDIMScheduler(num_train_timesteps=big_t, timestep_spacing=spacing)
        for n in range(1, 101):
            scheduler.set_timesteps(n)
            cases.append(
                {"T": big_t, "n": n, "spacing": spacing, "timesteps": scheduler.timesteps.tolist()}
            )

out = {
    "made_by": "diffusers_ddim_timesteps.py",
    "versions": {
        "diffusers": diffusers.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    },
    "cases": cases,
}
path = Path(__file__).with_name("diffusers_ddim_timesteps.json")
path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
print(f"wrote {len(cases)} cases to {path}")
