//! `ddpm`: run the tutorial pipeline and write its figures and results, or run one of the
//! experiment grids.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ddpm_core::experiment::{ExperimentName, run_experiment};
use ddpm_core::pipeline::run_and_save;
use ddpm_core::prelude::*;
use ddpm_core::progress::ConsoleProgress;

/// Train a DDPM on 2-D toy data, sample from it, and write the tutorial's figures,
/// samples, metrics and resolved config into the output directory.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Experiment config (TOML or JSON); flags below override it.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Training distribution.
    #[arg(long, global = true)]
    dataset: Option<DatasetKind>,
    /// Passes over the training set.
    #[arg(long, global = true)]
    epochs: Option<usize>,
    /// Number of diffusion steps T.
    #[arg(long, global = true)]
    timesteps: Option<usize>,
    /// Noise schedule.
    #[arg(long, global = true)]
    schedule: Option<ScheduleKind>,
    /// What the network predicts.
    #[arg(long, global = true)]
    prediction: Option<Prediction>,
    /// Sample with DDIM in this many steps (eta = 0) instead of DDPM's T steps.
    #[arg(long, value_name = "STEPS", global = true)]
    ddim: Option<usize>,
    /// Master seed of every random draw.
    #[arg(long, global = true)]
    seed: Option<u64>,
    /// Directory for figures and results.
    #[arg(long, default_value = "outputs", global = true)]
    out_dir: PathBuf,
    /// Tensor backend.
    #[arg(long, default_value_t = Backend::default_cpu(), global = true)]
    backend: Backend,
    /// No progress bar.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an experiment grid (one change per variant, fixed seeds) and write
    /// `experiments/<name>/comparison.png`, `results.md` and `results.json` into the output
    /// directory. The base config is the notebooks' quick one unless `--config` names another.
    Experiment {
        /// Which grid.
        name: ExperimentName,
        /// Repeat every variant with this many seeds (seed, seed + 1, ...) and report mean ± sd.
        #[arg(long, default_value_t = 1)]
        seeds: usize,
    },
}

impl Args {
    /// The config file (or `default`) with the flags applied on top, validated.
    fn resolve(&self, default: ExperimentConfig) -> Result<ExperimentConfig> {
        let mut config = match &self.config {
            Some(path) => ExperimentConfig::load(path)?,
            None => default,
        };
        if let Some(v) = self.dataset {
            config.data.dataset = v;
        }
        if let Some(v) = self.epochs {
            config.train.epochs = v;
        }
        if let Some(v) = self.timesteps {
            config.diffusion.timesteps = v;
        }
        if let Some(v) = self.schedule {
            config.diffusion.schedule = v;
        }
        if let Some(v) = self.prediction {
            config.model.prediction = v;
        }
        if let Some(steps) = self.ddim {
            config.sampling.method = SamplerKind::Ddim;
            config.sampling.steps = steps;
            config.sampling.eta = 0.0;
        }
        if let Some(v) = self.seed {
            config.seed = v;
        }
        config.validate()?;
        Ok(config)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::Experiment { name, seeds }) => experiment(&args, name, seeds),
        None => pipeline(&args),
    }
}

/// `ddpm experiment <name>`.
fn experiment(args: &Args, name: ExperimentName, seeds: usize) -> Result<()> {
    let base = args.resolve(ExperimentConfig::quick())?;
    let device = args.backend.device()?;
    let dir = args.out_dir.join("experiments").join(name.name());
    let runs = name.variants().len() * seeds;
    eprintln!(
        "ddpm experiment {name}: {runs} runs from {} (T = {}, {} epochs), backend {}",
        base.data.dataset, base.diffusion.timesteps, base.train.epochs, args.backend
    );
    let mut done = 0;
    let quiet = args.quiet;
    let report = run_experiment(name, &base, seeds, &device, &mut |label, seed, run| {
        done += 1;
        if !quiet {
            let r = &run.report;
            eprintln!(
                "[{done}/{runs}] {label} (seed {seed}): ED {:.1}x floor, train {:.1} s, sample {:.2} s",
                r.trained.energy_distance.ratio_to_floor(),
                r.timings.train_seconds,
                r.timings.sample_seconds
            );
        }
    })
    .with_context(|| format!("experiment `{name}` failed"))?;
    report.write(&dir)?;
    println!("{}", report.table());
    eprintln!("wrote {}", dir.display());
    Ok(())
}

/// `ddpm`: the tutorial pipeline.
fn pipeline(args: &Args) -> Result<()> {
    let config = args.resolve(ExperimentConfig::default())?;
    let device = args.backend.device()?;
    eprintln!(
        "ddpm: {} on {}, T = {} ({}), {} epochs, backend {}",
        config.data.dataset,
        config.data.n_points,
        config.diffusion.timesteps,
        config.diffusion.schedule,
        config.train.epochs,
        args.backend
    );
    let mut progress = ConsoleProgress::new();
    let mut silent = Silent;
    let observer: &mut dyn TrainObserver = if args.quiet {
        &mut silent
    } else {
        &mut progress
    };
    let run = run_and_save(
        &config,
        &device,
        args.backend.name(),
        &args.out_dir,
        observer,
    )
    .with_context(|| format!("pipeline failed; outputs in {}", args.out_dir.display()))?;

    let r = &run.report;
    let ed = r.trained.energy_distance;
    eprintln!(
        "trained {:.1} s ({:.0} steps/s), sampled {} points in {:.1} s",
        r.timings.train_seconds,
        r.timings.train_steps_per_second,
        config.sampling.n_samples,
        r.timings.sample_seconds
    );
    eprintln!(
        "energy distance {:.4} (floor {:.4}, {:.1}x floor{})",
        ed.value,
        ed.floor,
        ed.ratio_to_floor(),
        r.untrained
            .as_ref()
            .map(|u| format!("; untrained {:.4}", u.energy_distance.value))
            .unwrap_or_default()
    );
    eprintln!("wrote figures and results to {}", args.out_dir.display());
    Ok(())
}
