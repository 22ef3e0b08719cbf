//! The tutorial's whole pipeline, as the command runs it: config -> data -> schedule + model ->
//! training -> sampling -> metrics -> figures and result files in one output directory.
//!
//! One config ([`ExperimentConfig`]) describes a run on points or on images, and
//! [`run_and_save`] and [`sample_and_save`] take either. The stages they share — the model
//! ([`init_model`]), the seeds, training, the classes asked for ([`wanted_classes`]), the
//! sampler — are the same functions; what the data kind decides is how samples are measured
//! and drawn: against fresh draws of a 2-D distribution here (this module and [`figures`]), by
//! a classifier for images ([`images`]).

mod figures;
pub mod images;

pub use figures::{ANIMATION_FRAME_MS, GUIDANCE_SCALES, GuidanceSweep, SWEEP_SAMPLES};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use crate::config::ExperimentConfig;
use crate::data::{DataShape, Dataset2d};
use crate::error::Result;
use crate::io;
use crate::metrics::{ConditionalReport, QualityReport};
use crate::model::{Denoise, Network};
use crate::plot;
use crate::rng::NoiseSource;
use crate::sampling::{Guided, SampleOutput, Sampler, SamplerKind, SamplingConfig, StepRule};
use crate::schedule::NoiseSchedule;
use crate::time::PaperTime;
use crate::train::{LossHistory, TrainObserver, load_model, save_network, train};

use images::ImageRun;

/// The file names the pipeline writes; the tutorial text refers to them.
pub mod files {
    /// Loss per step, moving average and per-epoch mean.
    pub const TRAINING_CURVE: &str = "training_curve.png";
    /// The data noised at several t.
    pub const FORWARD_PROCESS: &str = "forward_process.png";
    /// Noise turning into samples at several t.
    pub const REVERSE_PROCESS: &str = "reverse_process.png";
    /// The reverse process, animated.
    pub const SAMPLING_ANIMATION: &str = "sampling_animation.gif";
    /// beta, alpha-bar and log SNR of the schedule used (and the alternatives).
    pub const NOISE_SCHEDULE: &str = "noise_schedule.png";
    /// Real data beside generated samples.
    pub const REAL_VS_GENERATED: &str = "real_vs_generated.png";
    /// Histograms of each coordinate.
    pub const MARGINALS: &str = "marginal_distributions.png";
    /// Generated points, `x,y`.
    pub const SAMPLES_CSV: &str = "samples.csv";
    /// Training points, `x,y,label`.
    pub const DATA_CSV: &str = "data.csv";
    /// Metrics, timings and the loss history.
    pub const METRICS_JSON: &str = "metrics.json";
    /// The resolved config: re-run it with `--config` for the same numbers.
    pub const CONFIG_JSON: &str = "config.json";
    /// The trained weights (burnpack).
    pub const MODEL: &str = "model.bpk";
    /// A conditional model's samples coloured by the class asked for, beside the real classes.
    pub const CONDITIONAL_SAMPLES: &str = "conditional_samples.png";
    /// A conditional model's samples at several guidance scales w.
    pub const GUIDANCE_SWEEP: &str = "guidance_sweep.png";
    /// Class accuracy and per-class energy distance at each w of the sweep.
    pub const GUIDANCE_SWEEP_JSON: &str = "guidance_sweep.json";
}

/// Timings of the pipeline's stages, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timings {
    /// Training.
    pub train_seconds: f64,
    /// Optimizer steps per second.
    pub train_steps_per_second: f64,
    /// Sampling `n_samples` points with the trained model (the untrained baseline, if any,
    /// samples at the same time on another thread).
    pub sample_seconds: f64,
}

/// What the pipeline measured; written as `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineReport {
    /// The backend it ran on.
    pub backend: String,
    /// Quality of the trained model's samples against a held-out draw of the data.
    pub trained: QualityReport,
    /// Quality of an untrained network's samples (same architecture, seed and sampler): the
    /// baseline the trained model must beat. Absent when the run skipped it
    /// ([`RunOptions::untrained_baseline`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untrained: Option<QualityReport>,
    /// A conditional model's class accuracy and per-class quality (absent when unconditional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassesReport>,
    /// Mean loss of the last epoch.
    pub final_loss: f32,
    /// Stage timings.
    pub timings: Timings,
    /// The losses of training.
    pub history: LossHistory,
}

/// How the samples of a conditional model, and of its untrained baseline, match their classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassesReport {
    /// The trained model.
    pub trained: ConditionalReport,
    /// The untrained baseline, if it was sampled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untrained: Option<ConditionalReport>,
}

/// Everything the pipeline computed, for callers that want more than files.
#[derive(Debug, Clone)]
pub struct PipelineRun {
    /// The measured report.
    pub report: PipelineReport,
    /// The training data.
    pub data: Dataset2d,
    /// The schedule.
    pub schedule: NoiseSchedule,
    /// The trained model (EMA weights if enabled).
    pub model: Network,
    /// Samples and trajectory.
    pub output: SampleOutput,
    /// The class each sample was asked for (empty for an unconditional model).
    pub wanted: Vec<usize>,
    /// The config it ran (validated).
    pub config: ExperimentConfig,
}

/// What a pipeline run computes besides training and sampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Also sample an untrained network of the same seed and score it (the baseline in
    /// `metrics.json`); costs a second sampling pass.
    pub untrained_baseline: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            untrained_baseline: true,
        }
    }
}

/// Train, sample and measure (with the untrained baseline), without writing anything.
pub fn run(
    config: &ExperimentConfig,
    device: &Device,
    backend: &str,
    observer: &mut dyn TrainObserver,
) -> Result<PipelineRun> {
    run_with_options(config, device, backend, observer, RunOptions::default())
}

/// [`run`] with a choice of what else to compute.
pub fn run_with_options(
    config: &ExperimentConfig,
    device: &Device,
    backend: &str,
    observer: &mut dyn TrainObserver,
    options: RunOptions,
) -> Result<PipelineRun> {
    config.validate()?;
    let seeds = config.seeds();
    let schedule = config.diffusion.init()?;
    let data = points_data(config)?;
    let model = init_model(config, device)?;

    let started = Instant::now();
    let trained = train(
        model,
        &schedule,
        &data,
        &config.train,
        seeds.train,
        device,
        observer,
    )?;
    let train_seconds = started.elapsed().as_secs_f64();
    sample_and_measure(
        config,
        Stage {
            data,
            schedule,
            model: trained.model,
            history: trained.history,
            train_seconds,
        },
        device,
        backend,
        options,
    )
}

/// Sample again from the trained model of `run` with another sampling section (DDIM instead
/// of DDPM, fewer steps, another variance...) and measure, without training again. The result
/// keeps `run`'s training history and time.
pub fn resample(
    run: &PipelineRun,
    sampling: &crate::sampling::SamplingConfig,
    device: &Device,
    options: RunOptions,
) -> Result<PipelineRun> {
    let mut config = run.config.clone();
    config.sampling = sampling.clone();
    config.validate()?;
    sample_and_measure(
        &config,
        Stage {
            data: run.data.clone(),
            schedule: run.schedule.clone(),
            model: run.model.clone(),
            history: run.report.history.clone(),
            train_seconds: run.report.timings.train_seconds,
        },
        device,
        &run.report.backend,
        options,
    )
}

/// The network `config` describes, with the run's seeded initial weights: the same for points
/// and images.
pub fn init_model(config: &ExperimentConfig, device: &Device) -> Result<Network> {
    config.init_model(config.seeds().init, device)
}

/// The training points of a 2-D config; an error naming the field for an image config.
fn points_data(config: &ExperimentConfig) -> Result<Dataset2d> {
    config.data.init(config.seeds().data)
}

/// What training hands to sampling.
struct Stage {
    data: Dataset2d,
    schedule: NoiseSchedule,
    model: Network,
    history: LossHistory,
    train_seconds: f64,
}

fn sample_and_measure(
    config: &ExperimentConfig,
    stage: Stage,
    device: &Device,
    backend: &str,
    options: RunOptions,
) -> Result<PipelineRun> {
    let seeds = config.seeds();
    let Stage {
        data,
        schedule,
        model,
        history,
        train_seconds,
    } = stage;
    let sampler = config.sampling.init(&schedule)?;
    let record = sampler.frame_times(config.sampling.trajectory_frames);
    let n = config.sampling.n_samples;
    let wanted = wanted_classes(config);
    // The untrained baseline samples on a second thread while the trained model samples here:
    // one sampling chain keeps one core busy, and the two draw from separate seeded streams, so
    // the numbers are the same as one after the other.
    let (output, sample_seconds, untrained) = std::thread::scope(|scope| {
        let baseline = options.untrained_baseline.then(|| {
            scope.spawn(|| {
                let untrained = init_model(config, device)?;
                let mut rng = NoiseSource::new(seeds.sample);
                draw(&sampler, &untrained, config, &wanted, &mut rng, &[], device)
            })
        });
        let started = Instant::now();
        let mut rng = NoiseSource::new(seeds.sample);
        let output = draw(&sampler, &model, config, &wanted, &mut rng, &record, device);
        let sample_seconds = started.elapsed().as_secs_f64();
        let untrained = baseline
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .transpose();
        (output, sample_seconds, untrained)
    });
    let (output, untrained) = (output?, untrained?);

    let reference = Dataset2d::generate(data.kind, n, seeds.eval);
    let floor = Dataset2d::generate(data.kind, n, seeds.eval.wrapping_add(1));
    let steps = history.per_step.len();
    let conditional = |samples: &[[f32; 2]]| -> Result<ConditionalReport> {
        ConditionalReport::compute(
            samples,
            &wanted,
            config.sampling.guidance_scale,
            reference.labelled(),
            floor.labelled(),
        )
    };
    let classes = if wanted.is_empty() {
        None
    } else {
        Some(ClassesReport {
            trained: conditional(&output.samples)?,
            untrained: untrained
                .as_ref()
                .map(|u| conditional(&u.samples))
                .transpose()?,
        })
    };
    let report = PipelineReport {
        backend: backend.to_string(),
        trained: QualityReport::compute(&output.samples, &reference.points, &floor.points)?,
        untrained: untrained
            .map(|u| QualityReport::compute(&u.samples, &reference.points, &floor.points))
            .transpose()?,
        classes,
        final_loss: history.per_epoch.last().copied().unwrap_or(f32::NAN),
        timings: Timings {
            train_seconds,
            train_steps_per_second: steps as f64 / train_seconds.max(1e-9),
            sample_seconds,
        },
        history,
    };
    Ok(PipelineRun {
        report,
        data,
        schedule,
        model,
        output,
        wanted,
        config: config.clone(),
    })
}

/// The class asked for at each sample of a conditional model: `sampling.class` for all, or
/// every class in equal shares (in blocks for points, as the data generators lay them out;
/// in turn for images, so that any first few images show every class); empty for an
/// unconditional model.
pub fn wanted_classes(config: &ExperimentConfig) -> Vec<usize> {
    let k = config.model.num_classes;
    let n = config.sampling.n_samples;
    match (k, config.sampling.class) {
        (0, _) => Vec::new(),
        (_, Some(class)) => vec![class; n],
        (k, None) if config.data.dataset.is_images() => (0..n).map(|i| i % k).collect(),
        (k, None) => (0..n).map(|i| i * k / n).collect(),
    }
}

/// Sample `wanted.len()` points (or `n_samples` from an unconditional model), guided with
/// `sampling.guidance_scale` towards the wanted classes of a conditional model.
fn draw<M: Denoise>(
    sampler: &Sampler<'_>,
    model: &M,
    config: &ExperimentConfig,
    wanted: &[usize],
    rng: &mut NoiseSource,
    record: &[PaperTime],
    device: &Device,
) -> Result<SampleOutput> {
    let n = config.sampling.n_samples;
    if wanted.is_empty() {
        return sampler.sample(model, n, rng, record, device);
    }
    let guided = Guided::new(model, wanted, config.sampling.guidance_scale, device)?;
    sampler.sample(&guided, n, rng, record, device)
}

/// A finished run of either kind.
pub enum Run {
    /// A run on 2-D points.
    Points(Box<PipelineRun>),
    /// A run on images (boxed: it holds the data, the classifier and its features).
    Images(Box<ImageRun>),
}

impl Run {
    /// The config it ran.
    pub fn config(&self) -> &ExperimentConfig {
        match self {
            Run::Points(run) => &run.config,
            Run::Images(run) => &run.config,
        }
    }

    /// The trained network.
    pub fn model(&self) -> &Network {
        match self {
            Run::Points(run) => &run.model,
            Run::Images(run) => &run.model,
        }
    }
}

/// Run the pipeline on points or images and write every figure and result file into
/// `out_dir`.
///
/// The config is validated and `out_dir` checked writable before training starts. The files are
/// staged and moved into `out_dir` only once all of them are written: a run that fails (a
/// diverged loss, non-finite samples) leaves the outputs of the last good run as they were.
/// An image run caches its classifier in `out_dir`.
pub fn run_and_save(
    config: &ExperimentConfig,
    device: &Device,
    backend: &str,
    out_dir: &Path,
    observer: &mut dyn TrainObserver,
) -> Result<Run> {
    config.validate()?;
    if config.data.dataset.is_images() {
        return images::run_images_and_save(config, device, backend, out_dir, observer)
            .map(|run| Run::Images(Box::new(run)));
    }
    let staged = io::StagedDir::create(out_dir)?;
    let run = run(config, device, backend, observer)?;
    write_outputs(&run, device, staged.path())?;
    staged.commit()?;
    Ok(Run::Points(Box::new(run)))
}

/// Load a model saved by [`run_and_save`] (its architecture and schedule from `config`), sample
/// from it with `config.sampling` and measure, without training.
pub fn run_from_model(
    config: &ExperimentConfig,
    model_path: &Path,
    device: &Device,
    backend: &str,
    options: RunOptions,
) -> Result<PipelineRun> {
    config.validate()?;
    let model = load_model(
        &config.model,
        DataShape::Points,
        config.diffusion.timesteps,
        model_path,
        device,
    )?;
    sample_and_measure(
        config,
        Stage {
            data: points_data(config)?,
            schedule: config.diffusion.init()?,
            model,
            history: LossHistory::default(),
            train_seconds: 0.0,
        },
        device,
        backend,
        options,
    )
}

/// `ddpm sample`: sample a saved model of either kind again (no untrained baseline), then write
/// the samples, their metrics, the config and the figures that need only a model into
/// `out_dir`, staged as in [`run_and_save`]. Points: [`run_from_model`]; images:
/// [`images::sample_images_and_save`].
pub fn sample_and_save(
    config: &ExperimentConfig,
    model_path: &Path,
    device: &Device,
    backend: &str,
    out_dir: &Path,
) -> Result<Run> {
    config.validate()?;
    if config.data.dataset.is_images() {
        return images::sample_images_and_save(config, model_path, device, backend, out_dir)
            .map(|run| Run::Images(Box::new(run)));
    }
    let staged = io::StagedDir::create(out_dir)?;
    let options = RunOptions {
        untrained_baseline: false,
    };
    let run = run_from_model(config, model_path, device, backend, options)?;
    let out = staged.path();
    io::write_atomic(
        &out.join(files::CONFIG_JSON),
        run.config.to_json().as_bytes(),
    )?;
    io::write_atomic(
        &out.join(files::SAMPLES_CSV),
        points_csv(&run.output.samples, None).as_bytes(),
    )?;
    let report = SampleReport {
        backend: &run.report.backend,
        model: model_path,
        trained: &run.report.trained,
        classes: run.report.classes.as_ref(),
        sample_seconds: run.report.timings.sample_seconds,
    };
    let metrics = serde_json::to_string_pretty(&report).expect("report serialises");
    io::write_atomic(&out.join(files::METRICS_JSON), metrics.as_bytes())?;
    write_sample_figures(&run, device, out)?;
    staged.commit()?;
    Ok(Run::Points(Box::new(run)))
}

/// What `ddpm sample` measured; written as its `metrics.json`.
#[derive(Serialize)]
struct SampleReport<'a> {
    backend: &'a str,
    model: &'a Path,
    trained: &'a QualityReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    classes: Option<&'a ClassesReport>,
    sample_seconds: f64,
}

/// "DDPM, T = 1000" or "DDIM 50 of T = 1000, eta = 0": the sampler `config` uses.
pub fn sampler_name(config: &ExperimentConfig) -> String {
    sampler_description(&config.sampling, config.diffusion.timesteps)
}

/// [`sampler_name`] from the sampling config and T.
pub fn sampler_description(s: &SamplingConfig, t: usize) -> String {
    let sampler = match s.method {
        SamplerKind::Ddpm => format!("DDPM, T = {t}"),
        SamplerKind::Ddim => {
            let steps = if s.steps == 0 { t } else { s.steps };
            format!("DDIM {steps} of T = {t}, eta = {}", s.eta)
        }
    };
    // guidance other than w = 1 (the plain conditional model) is part of how it samples
    if s.guidance_scale == 1.0 {
        sampler
    } else {
        format!("{sampler}, guidance w = {}", s.guidance_scale)
    }
}

fn write_outputs(run: &PipelineRun, device: &Device, out: &Path) -> Result<()> {
    let path = |name: &str| -> PathBuf { out.join(name) };
    io::write_atomic(&path(files::CONFIG_JSON), run.config.to_json().as_bytes())?;
    io::write_atomic(
        &path(files::DATA_CSV),
        points_csv(&run.data.points, Some(&run.data.labels)).as_bytes(),
    )?;
    io::write_atomic(
        &path(files::SAMPLES_CSV),
        points_csv(&run.output.samples, None).as_bytes(),
    )?;
    let metrics = serde_json::to_string_pretty(&run.report).expect("report serialises");
    io::write_atomic(&path(files::METRICS_JSON), metrics.as_bytes())?;
    save_network(&run.model, &path(files::MODEL))?;

    plot::save_png(&run.training_curve(), &path(files::TRAINING_CURVE))?;
    plot::save_png(&run.noise_schedule()?, &path(files::NOISE_SCHEDULE))?;
    plot::save_png(&run.forward_process(device)?, &path(files::FORWARD_PROCESS))?;
    write_sample_figures(run, device, out)
}

/// The figures that need only the samples (and their trajectory).
fn write_sample_figures(run: &PipelineRun, device: &Device, out: &Path) -> Result<()> {
    let path = |name: &str| -> PathBuf { out.join(name) };
    if !run.output.trajectory.is_empty() {
        plot::save_png(&run.reverse_process()?, &path(files::REVERSE_PROCESS))?;
        plot::save_gif(
            &run.sampling_animation()?,
            &path(files::SAMPLING_ANIMATION),
            ANIMATION_FRAME_MS,
        )?;
    }
    plot::save_png(&run.real_vs_generated(), &path(files::REAL_VS_GENERATED))?;
    plot::save_png(&run.marginals(), &path(files::MARGINALS))?;
    if !run.wanted.is_empty() {
        plot::save_png(
            &run.conditional_samples(),
            &path(files::CONDITIONAL_SAMPLES),
        )?;
        let sweep = run.guidance_sweep(&GUIDANCE_SCALES, SWEEP_SAMPLES, device)?;
        plot::save_png(&sweep.chart(run.bounds()), &path(files::GUIDANCE_SWEEP))?;
        let json = serde_json::to_string_pretty(&sweep.reports).expect("sweep serialises");
        io::write_atomic(&path(files::GUIDANCE_SWEEP_JSON), json.as_bytes())?;
    }
    Ok(())
}

/// Points as CSV with a header, optionally with a label column.
pub fn points_csv(points: &[[f32; 2]], labels: Option<&[usize]>) -> String {
    let mut csv = String::from(if labels.is_some() {
        "x,y,label\n"
    } else {
        "x,y\n"
    });
    for (i, p) in points.iter().enumerate() {
        match labels {
            Some(l) => writeln!(csv, "{},{},{}", p[0], p[1], l[i]),
            None => writeln!(csv, "{},{}", p[0], p[1]),
        }
        .expect("writing to a String cannot fail");
    }
    csv
}
