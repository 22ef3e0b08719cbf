//! `ddpm`: run the tutorial pipeline and write its figures and results, sample again from a
//! saved model, or run one of the experiment grids.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, Parser, Subcommand};
use ddpm_core::data::{Dataset, ImageDataset};
use ddpm_core::experiment::{ExperimentName, run_experiment};
use ddpm_core::pipeline::images::ImageRun;
use ddpm_core::pipeline::{PipelineRun, Run, run_and_save, sample_and_save};
use ddpm_core::prelude::*;
use ddpm_core::progress::ConsoleProgress;

/// burn's CPU backends allocate a buffer per op; glibc's malloc returns large ones to the kernel
/// and faults them back in, which costs sampling on flex about 40% (README, "Speed").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train a DDPM on 2-D toy data or on images, sample from it, and write the tutorial's
/// figures, samples, metrics and resolved config into the output directory.
///
/// Every knob below overrides the config file (`--config`), which overrides the defaults;
/// the resolved config is saved as `config.json` beside the results.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Experiment config (TOML or JSON; see `configs/`); the flags below override it.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    knobs: Knobs,
    /// Directory for figures and results [default: `outputs`; for `sample`, a `sample/`
    /// folder beside the model].
    #[arg(long, value_name = "DIR", global = true)]
    out_dir: Option<PathBuf>,
    /// Tensor backend.
    #[arg(long, default_value_t = Backend::default_cpu(), global = true)]
    backend: Backend,
    /// No progress bar.
    #[arg(long, global = true)]
    quiet: bool,
}

/// The knobs the tutorial tells a learner to turn, each one config field.
#[derive(Debug, Default, ClapArgs)]
struct Knobs {
    /// Master seed of every random draw [seed].
    #[arg(long, global = true, help_heading = "Knobs")]
    seed: Option<u64>,
    /// Training data: a 2-D distribution [data.dataset] (moons, circles, spirals, swiss_roll,
    /// eight_gaussians, checkerboard) or an image dataset, trained with a class-conditional
    /// U-Net (digits, fashion_mnist, mnist, cifar10).
    #[arg(long, global = true, help_heading = "Knobs")]
    dataset: Option<Dataset>,
    /// Directory of an image dataset's files (MNIST, CIFAR-10; Fashion-MNIST if not in
    /// /usr/share/datasets/fashion-mnist) [data.data_dir].
    #[arg(long, value_name = "DIR", global = true, help_heading = "Knobs")]
    data_dir: Option<PathBuf>,
    /// Number of training points [data.n_points]; for images, train on the first N (0: all).
    #[arg(long, value_name = "N", global = true, help_heading = "Knobs")]
    n_points: Option<usize>,
    /// The U-Net's channels per resolution, finest first, e.g. `16,32,32` [model.network.channels]
    /// (image datasets).
    #[arg(
        long,
        value_name = "WIDTHS",
        value_delimiter = ',',
        global = true,
        help_heading = "Knobs"
    )]
    channels: Option<Vec<usize>>,
    /// Number of diffusion steps T [diffusion.timesteps].
    #[arg(long, global = true, help_heading = "Knobs")]
    timesteps: Option<usize>,
    /// Noise schedule [diffusion.schedule].
    #[arg(long, global = true, help_heading = "Knobs")]
    schedule: Option<ScheduleKind>,
    /// First beta of the linear family, before scaling by 1000/T [diffusion.beta_start].
    #[arg(long, value_name = "BETA", global = true, help_heading = "Knobs")]
    beta_start: Option<f64>,
    /// Last beta of the linear family, before scaling by 1000/T [diffusion.beta_end].
    #[arg(long, value_name = "BETA", global = true, help_heading = "Knobs")]
    beta_end: Option<f64>,
    /// Width of the hidden layers [model.network.hidden_size].
    #[arg(long, value_name = "WIDTH", global = true, help_heading = "Knobs")]
    hidden_size: Option<usize>,
    /// Number of residual blocks [model.network.depth].
    #[arg(long, value_name = "BLOCKS", global = true, help_heading = "Knobs")]
    depth: Option<usize>,
    /// Non-linearity of the hidden layers [model.network.activation].
    #[arg(long, global = true, help_heading = "Knobs")]
    activation: Option<Activation>,
    /// How the network is told t; `none` is the ablation [model.network.time_embedding].
    #[arg(long, global = true, help_heading = "Knobs")]
    time_embedding: Option<TimeEmbeddingKind>,
    /// What the network predicts [model.prediction].
    #[arg(long, global = true, help_heading = "Knobs")]
    prediction: Option<Prediction>,
    /// Fixed variance, or learned by the hybrid loss [model.variance].
    #[arg(long, global = true, help_heading = "Knobs")]
    model_variance: Option<ModelVariance>,
    /// Passes over the training set [train.epochs].
    #[arg(long, global = true, help_heading = "Knobs")]
    epochs: Option<usize>,
    /// Points per optimizer step [train.batch_size].
    #[arg(long, global = true, help_heading = "Knobs")]
    batch_size: Option<usize>,
    /// Adam's step size [train.learning_rate].
    #[arg(
        long,
        visible_alias = "lr",
        value_name = "RATE",
        global = true,
        help_heading = "Knobs"
    )]
    learning_rate: Option<f64>,
    /// Decay of the moving average of the weights; 0 samples the last weights [train.ema_decay].
    #[arg(long, value_name = "DECAY", global = true, help_heading = "Knobs")]
    ema_decay: Option<f64>,
    /// Number of points to generate [sampling.n_samples].
    #[arg(
        long,
        visible_alias = "n",
        value_name = "N",
        global = true,
        help_heading = "Knobs"
    )]
    samples: Option<usize>,
    /// Variance of each DDPM reverse step: beta-tilde or beta [sampling.variance].
    #[arg(long, global = true, help_heading = "Knobs")]
    variance: Option<PosteriorVariance>,
    /// Sample with DDIM in this many steps instead of DDPM's T [sampling.method = ddim,
    /// sampling.steps]; deterministic unless `--eta` says otherwise.
    #[arg(long, value_name = "STEPS", global = true, help_heading = "Knobs")]
    ddim: Option<usize>,
    /// DDIM's noise scale in [0, 1] [sampling.eta].
    #[arg(long, global = true, help_heading = "Knobs")]
    eta: Option<f64>,
    /// Train on the dataset's classes, for class-conditional generation
    /// [model.num_classes = the dataset's classes].
    #[arg(long, global = true, help_heading = "Knobs")]
    conditional: bool,
    /// Share of training labels replaced by the null class [train.label_dropout].
    #[arg(long, value_name = "P", global = true, help_heading = "Knobs")]
    label_dropout: Option<f64>,
    /// Classifier-free guidance scale w: 0 unconditional, 1 conditional, > 1 guided
    /// [sampling.guidance_scale].
    #[arg(
        long,
        value_name = "W",
        allow_negative_numbers = true,
        global = true,
        help_heading = "Knobs"
    )]
    guidance: Option<f64>,
    /// Generate only this class (default: every class, in equal shares) [sampling.class].
    #[arg(long, value_name = "K", global = true, help_heading = "Knobs")]
    class: Option<usize>,
}

fn set<T: Clone>(field: &mut T, flag: &Option<T>) {
    if let Some(v) = flag {
        *field = v.clone();
    }
}

impl Knobs {
    /// Write every given flag into `config`: the same field for points and images. A flag of
    /// the other network (`--hidden-size` on a U-Net, `--channels` on the MLP) is an error that
    /// says which network the config has.
    fn apply(&self, config: &mut ExperimentConfig) -> Result<()> {
        set(&mut config.seed, &self.seed);
        if let Some(dataset) = self.dataset {
            if dataset.is_images() != config.data.dataset.is_images() {
                bail!(
                    "--dataset {dataset} needs the {} but the config trains the {} on {}: start \
                     from a config for it (configs/{}) or leave out --config",
                    if dataset.is_images() { "U-Net" } else { "MLP" },
                    if dataset.is_images() { "MLP" } else { "U-Net" },
                    config.data.dataset,
                    if dataset.is_images() {
                        "digits.toml, fashion_mnist.toml"
                    } else {
                        "default.toml, quick.toml"
                    },
                );
            }
            config.data.dataset = dataset;
        }
        if self.data_dir.is_some() {
            config.data.data_dir = self.data_dir.clone();
        }
        set(&mut config.data.n_points, &self.n_points);
        let network = config.model.network.kind();
        let wrong_network = |flag: &str, field: &str| {
            anyhow::anyhow!(
                "{flag} sets model.network.{field}, which the {network} network of this config \
                 does not have (the MLP: --hidden-size, --depth, --activation, --time-embedding; \
                 the U-Net: --channels)"
            )
        };
        if let Some(channels) = &self.channels {
            let unet = config
                .model
                .unet_mut()
                .ok_or_else(|| wrong_network("--channels", "channels"))?;
            unet.channels = channels.clone();
        }
        let mlp_flags = [
            ("--hidden-size", "hidden_size", self.hidden_size.is_some()),
            ("--depth", "depth", self.depth.is_some()),
            ("--activation", "activation", self.activation.is_some()),
            (
                "--time-embedding",
                "time_embedding",
                self.time_embedding.is_some(),
            ),
        ];
        if let Some((flag, field, _)) = mlp_flags.iter().find(|(_, _, given)| *given) {
            let mlp = config
                .model
                .mlp_mut()
                .ok_or_else(|| wrong_network(flag, field))?;
            set(&mut mlp.hidden_size, &self.hidden_size);
            set(&mut mlp.depth, &self.depth);
            set(&mut mlp.activation, &self.activation);
            set(&mut mlp.time_embedding, &self.time_embedding);
        }
        set(&mut config.diffusion.timesteps, &self.timesteps);
        set(&mut config.diffusion.schedule, &self.schedule);
        set(&mut config.diffusion.beta_start, &self.beta_start);
        set(&mut config.diffusion.beta_end, &self.beta_end);
        set(&mut config.model.prediction, &self.prediction);
        set(&mut config.model.variance, &self.model_variance);
        if self.conditional {
            config.model.num_classes = config.data.dataset.num_classes();
        }
        set(&mut config.train.epochs, &self.epochs);
        set(&mut config.train.batch_size, &self.batch_size);
        set(&mut config.train.learning_rate, &self.learning_rate);
        set(&mut config.train.ema_decay, &self.ema_decay);
        set(&mut config.train.label_dropout, &self.label_dropout);
        set(&mut config.sampling.n_samples, &self.samples);
        set(&mut config.sampling.variance, &self.variance);
        if let Some(steps) = self.ddim {
            config.sampling.method = SamplerKind::Ddim;
            config.sampling.steps = steps;
            config.sampling.eta = 0.0;
        }
        set(&mut config.sampling.guidance_scale, &self.guidance);
        if self.class.is_some() {
            config.sampling.class = self.class;
        }
        if let Some(eta) = self.eta {
            if config.sampling.method != SamplerKind::Ddim {
                bail!(
                    "--eta = {eta} applies to DDIM only (sampling.method = {}); add `--ddim STEPS`",
                    config.sampling.method
                );
            }
            config.sampling.eta = eta;
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an experiment grid (one change per variant, fixed seeds) and write
    /// `experiments/<name>/comparison.png`, `results.md` and `results.json` into the output
    /// directory. The base config is the notebooks' quick one unless `--config` names another.
    Experiment {
        /// Which grid.
        name: ExperimentName,
        /// Repeat every variant with this many seeds, each 10000 apart (seed, seed + 10000, ...),
        /// and report mean ± sd.
        #[arg(long, default_value_t = 1)]
        seeds: usize,
    },
    /// Sample again from a trained model, without training: reads the model and the
    /// `config.json` saved beside it (or `--config`), applies the sampling flags (`--n`,
    /// `--ddim`, `--eta`, `--variance`, `--seed`), and writes samples, metrics and the figures
    /// that need only a model.
    Sample {
        /// The trained weights, e.g. `outputs/model.bpk`.
        #[arg(long, value_name = "FILE")]
        model: PathBuf,
    },
}

impl Args {
    /// The config file (or the defaults for `--dataset`: `default` for a 2-D dataset or none,
    /// the dataset's preset for images) with the flags applied on top, validated.
    fn resolve(&self, default: ExperimentConfig) -> Result<ExperimentConfig> {
        let config = match (&self.config, self.knobs.dataset) {
            (Some(path), _) => ExperimentConfig::load(path)?,
            (None, Some(dataset)) if dataset.is_images() => ExperimentConfig::for_dataset(dataset),
            (None, _) => default,
        };
        self.finish(config)
    }

    fn finish(&self, mut config: ExperimentConfig) -> Result<ExperimentConfig> {
        self.knobs.apply(&mut config)?;
        config.validate()?;
        Ok(config)
    }

    fn observer(&self) -> Box<dyn TrainObserver> {
        if self.quiet {
            Box::new(Silent)
        } else {
            Box::new(ConsoleProgress::new())
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    match &args.command {
        Some(Command::Experiment { name, seeds }) => experiment(&args, *name, *seeds),
        Some(Command::Sample { model }) => sample(&args, model),
        None => pipeline(&args),
    }
}

/// `ddpm experiment <name>`.
fn experiment(args: &Args, name: ExperimentName, seeds: usize) -> Result<()> {
    let base = match (&args.config, args.knobs.dataset) {
        // the notebooks' budget on images too
        (None, Some(Dataset::Images(ImageDataset::Digits))) => {
            args.finish(ExperimentConfig::digits_quick())?
        }
        _ => args.resolve(ExperimentConfig::quick())?,
    };
    let device = args.backend.device()?;
    let out_dir = args.out_dir.clone().unwrap_or_else(|| "outputs".into());
    let dir = out_dir.join("experiments").join(name.name());
    let runs = name.variants().len() * seeds;
    eprintln!(
        "ddpm experiment {name}: {runs} runs from {} (T = {}, {} epochs), backend {}",
        base.data.dataset,
        base.diffusion.timesteps,
        base.train.epochs,
        backend_label(args.backend)
    );
    let mut done = 0;
    let quiet = args.quiet;
    let report = run_experiment(name, &base, seeds, &device, &mut |label, seed, line| {
        done += 1;
        if !quiet {
            eprintln!("[{done}/{runs}] {label} (seed {seed}): {line}");
        }
    })
    .with_context(|| format!("experiment `{name}` failed"))?;
    report.write(&dir)?;
    println!("{}", report.table());
    eprintln!("wrote {}", dir.display());
    Ok(())
}

/// `ddpm`: the tutorial pipeline, on points or images.
fn pipeline(args: &Args) -> Result<()> {
    let config = args.resolve(ExperimentConfig::default())?;
    let device = args.backend.device()?;
    let out_dir = args.out_dir.clone().unwrap_or_else(|| "outputs".into());
    let examples = match (config.data.dataset.is_images(), config.data.n_points) {
        (false, n) => format!(" on {n}"),
        (true, 0) => String::new(),
        (true, n) => format!(" (first {n} images)"),
    };
    eprintln!(
        "ddpm: {}{examples} with a {}{}, T = {} ({}), {} epochs, backend {}",
        config.data.dataset,
        config.model.describe(),
        if config.model.num_classes > 0 {
            ", class-conditional"
        } else {
            ""
        },
        config.diffusion.timesteps,
        config.diffusion.schedule,
        config.train.epochs,
        backend_label(args.backend)
    );
    let run = run_and_save(
        &config,
        &device,
        args.backend.name(),
        &out_dir,
        args.observer().as_mut(),
    )
    .with_context(|| unchanged(&out_dir))?;
    match &run {
        Run::Points(run) => {
            let r = &run.report;
            eprintln!(
                "trained {:.1} s ({:.0} steps/s), sampled {} points in {:.1} s",
                r.timings.train_seconds,
                r.timings.train_steps_per_second,
                config.sampling.n_samples,
                r.timings.sample_seconds
            );
            report_quality(run, &out_dir);
        }
        Run::Images(run) => {
            let r = &run.report;
            eprintln!(
                "trained on {} images in {:.1} s ({:.1} s per epoch); sampled {} images in {:.1} s ({})",
                r.train_images,
                r.train_seconds,
                r.seconds_per_epoch,
                run.output.samples.len(),
                r.sample_seconds,
                r.sampler
            );
            report_images(run, &out_dir);
        }
    }
    Ok(())
}

/// `ddpm sample --model FILE`.
fn sample(args: &Args, model: &Path) -> Result<()> {
    let config = match &args.config {
        Some(path) => ExperimentConfig::load(path)?,
        None => saved_config(model)?,
    };
    let config = args.finish(config)?;
    let device = args.backend.device()?;
    let out_dir = args.out_dir.clone().unwrap_or_else(|| {
        model
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("sample")
    });
    let what = if config.data.dataset.is_images() {
        "images"
    } else {
        "points"
    };
    let class = config
        .sampling
        .class
        .map(|c| format!(" of class {c}"))
        .unwrap_or_default();
    eprintln!(
        "ddpm sample: {} {what}{class} from {} ({}), backend {}",
        config.sampling.n_samples,
        model.display(),
        ddpm_core::pipeline::sampler_name(&config),
        backend_label(args.backend)
    );
    let run = sample_and_save(&config, model, &device, args.backend.name(), &out_dir)
        .with_context(|| unchanged(&out_dir))?;
    match &run {
        Run::Points(run) => {
            eprintln!(
                "sampled {} points in {:.1} s",
                config.sampling.n_samples, run.report.timings.sample_seconds
            );
            report_quality(run, &out_dir);
        }
        Run::Images(run) => {
            eprintln!(
                "sampled {} images in {:.1} s",
                config.sampling.n_samples, run.report.sample_seconds
            );
            report_images(run, &out_dir);
        }
    }
    Ok(())
}

/// The config the pipeline saved beside `model`.
fn saved_config(model: &Path) -> Result<ExperimentConfig> {
    let path = model.with_file_name(ddpm_core::pipeline::files::CONFIG_JSON);
    if !path.exists() {
        bail!(
            "no {} beside the model {}: the model's architecture and schedule are read from it; \
             name the config it was trained with by `--config FILE`",
            path.display(),
            model.display()
        );
    }
    Ok(ExperimentConfig::load(&path)?)
}

fn unchanged(out_dir: &Path) -> String {
    format!(
        "nothing was written to {}; files already there are unchanged",
        out_dir.display()
    )
}

fn report_images(run: &ImageRun, out_dir: &Path) {
    eprintln!("{}", run.quality_table());
    if let Some(nll) = &run.report.nll {
        eprintln!(
            "NLL bound on {} held-out images: {:.3} bits/dim (discretised decoder)",
            run.report.nll_images, nll.bits_per_dim
        );
    }
    eprintln!("wrote figures and results to {}", out_dir.display());
}

fn report_quality(run: &PipelineRun, out_dir: &Path) {
    eprintln!(
        "quality: {}{}",
        run.report.trained.summary(),
        run.report
            .untrained
            .as_ref()
            .map(|u| format!("; untrained: {}", u.summary()))
            .unwrap_or_default()
    );
    eprintln!("wrote figures and results to {}", out_dir.display());
}

/// The backend's name, with the adapter for wgpu (a GPU, or a software driver like llvmpipe).
fn backend_label(backend: Backend) -> String {
    match backend {
        Backend::Wgpu => backend
            .hardware()
            .map_or_else(|_| "wgpu".into(), |adapter| format!("wgpu on {adapter}")),
        other => other.name().to_string(),
    }
}
