//! The digits table of docs/experiments.md: train the command's digits model once, then sample it
//! with DDPM and with DDIM at several step counts and guidance scales, each scored by the
//! classifier (Fréchet classifier distance with its floor, and class accuracy).
//!
//! `cargo run --release --example digits_samplers [-- DIR]` (about 12 minutes on two CPU
//! cores); with DIR, also writes the run's real-vs-generated and reverse-process pictures there
//! (docs/images holds them).

use ddpm_core::pipeline::images::{classifier_path, run_images};
use ddpm_core::prelude::*;
use ddpm_core::progress::ConsoleProgress;

fn main() -> Result<()> {
    let device = Backend::default_cpu().device()?;
    let config = ExperimentConfig::digits();
    let cache = classifier_path(&config, &std::env::temp_dir());
    let run = run_images(
        &config,
        &device,
        "flex",
        &cache,
        &mut ConsoleProgress::new(),
    )?;
    if let Some(dir) = std::env::args().nth(1) {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).map_err(|e| DdpmError::io(dir, e))?;
        let files = [
            (
                "digits_real_vs_generated.png",
                run.real_vs_generated().to_png()?,
            ),
            (
                "digits_reverse_process.png",
                run.reverse_process().to_png()?,
            ),
        ];
        for (name, png) in files {
            ddpm_core::io::write_atomic(&dir.join(name), png.bytes())?;
        }
    }
    let r = &run.report;
    println!(
        "digits, U-Net {:?} ({} parameters), T = {}, {} epochs, {:.0} s training; floor: FCD {:.2}, real accuracy {:.1} %; untrained FCD {:.1}",
        config
            .model
            .unet()
            .map(|u| u.channels.clone())
            .unwrap_or_default(),
        r.parameters,
        config.diffusion.timesteps,
        config.train.epochs,
        r.train_seconds,
        r.floor.fcd,
        100.0 * r.floor.class_accuracy.unwrap_or(0.0),
        r.untrained.map_or(f64::NAN, |u| u.fcd),
    );
    let mut table = Table::new([
        "sampler",
        "steps",
        "guidance w",
        "FCD",
        "x floor",
        "class accuracy",
        "sample s",
    ]);
    let variants: [(SamplerKind, usize, f64); 6] = [
        (SamplerKind::Ddpm, 0, 1.0),
        (SamplerKind::Ddim, 50, 1.0),
        (SamplerKind::Ddim, 10, 1.0),
        (SamplerKind::Ddim, 50, 0.0),
        (SamplerKind::Ddim, 50, 2.0),
        (SamplerKind::Ddim, 50, 4.0),
    ];
    for (method, steps, w) in variants {
        let sampling = SamplingConfig {
            method,
            steps,
            guidance_scale: w,
            ..config.sampling.clone()
        };
        let again = run.score_sampling(&sampling, &device)?;
        let (score, seconds) = (again.score, again.seconds);
        let shown_steps = if method == SamplerKind::Ddpm {
            config.diffusion.timesteps
        } else {
            steps
        };
        table.push([
            method.to_string(),
            shown_steps.to_string(),
            format!("{w}"),
            format!("{:.2}", score.fcd),
            format!("{:.1}", score.fcd / r.floor.fcd),
            format!("{:.1} %", 100.0 * score.class_accuracy.unwrap_or(0.0)),
            format!("{seconds:.1}"),
        ]);
        eprintln!("{method} {shown_steps} w={w}: FCD {:.2}", score.fcd);
    }
    println!("{}", table.to_markdown());
    Ok(())
}
