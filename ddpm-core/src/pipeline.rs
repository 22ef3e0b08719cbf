//! The tutorial's whole pipeline, as the command runs it: config -> data -> schedule + model ->
//! training -> sampling -> metrics -> figures and result files in one output directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use crate::config::ExperimentConfig;
use crate::data::Dataset2d;
use crate::diffusion::noising_snapshots;
use crate::metrics::{ConditionalReport, Labelled, QualityReport};
use crate::model::MlpDenoiser;
use crate::notebook::Table;
use crate::plot::{
    self, Bounds, LossCurve, Marginals, Panel, ScatterPanels, ScheduleChart, ScheduleCurve,
    TrajectoryAnimation,
};
use crate::plot::{GENERATED, REAL};
use crate::rng::{NoiseSource, seeded};
use crate::sampling::{Frame, Guided, SampleOutput, Sampler, SamplerKind, evenly_spaced_steps};
use crate::schedule::{NoiseSchedule, ScheduleConfig, ScheduleKind};
use crate::train::{LossHistory, TrainObserver, load_model, save_model, train};
use crate::{DdpmError, Result, io};

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
    pub model: MlpDenoiser,
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
    let data = config.data.init(seeds.data);
    let model = init_model(config, device);

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

/// The network `config` describes, with its seeded initial weights.
fn init_model(config: &ExperimentConfig, device: &Device) -> MlpDenoiser {
    seeded(device, config.seeds().init, || {
        config.model.init(config.diffusion.timesteps, device)
    })
}

/// What training hands to sampling.
struct Stage {
    data: Dataset2d,
    schedule: NoiseSchedule,
    model: MlpDenoiser,
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
                let untrained = init_model(config, device);
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

    let reference = Dataset2d::generate(config.data.dataset, n, seeds.eval);
    let floor = Dataset2d::generate(config.data.dataset, n, seeds.eval.wrapping_add(1));
    let steps = history.per_step.len();
    let conditional = |samples: &[[f32; 2]]| -> Result<ConditionalReport> {
        ConditionalReport::compute(
            samples,
            &wanted,
            config.sampling.guidance_scale,
            Labelled {
                points: &reference.points,
                labels: &reference.labels,
            },
            Labelled {
                points: &floor.points,
                labels: &floor.labels,
            },
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

/// The class asked for at each sample of a conditional model (`sampling.class`, or every class
/// in equal blocks, as the data generators lay them out); empty for an unconditional model.
pub fn wanted_classes(config: &ExperimentConfig) -> Vec<usize> {
    let k = config.model.num_classes;
    let n = config.sampling.n_samples;
    match (k, config.sampling.class) {
        (0, _) => Vec::new(),
        (_, Some(class)) => vec![class; n],
        (k, None) => (0..n).map(|i| i * k / n).collect(),
    }
}

/// Sample `wanted.len()` points (or `n_samples` from an unconditional model), guided with
/// `sampling.guidance_scale` towards the wanted classes of a conditional model.
fn draw(
    sampler: &Sampler<'_>,
    model: &MlpDenoiser,
    config: &ExperimentConfig,
    wanted: &[usize],
    rng: &mut NoiseSource,
    record: &[usize],
    device: &Device,
) -> Result<SampleOutput> {
    let n = config.sampling.n_samples;
    if wanted.is_empty() {
        return sampler.sample(model, n, rng, record, device);
    }
    let guided = Guided::new(model, wanted, config.sampling.guidance_scale, device)?;
    sampler.sample(&guided, n, rng, record, device)
}

/// Run the pipeline and write every figure and result file into `out_dir`.
///
/// The config is validated and `out_dir` checked writable before training starts. The files are
/// staged and moved into `out_dir` only once all of them are written: a run that fails (a
/// diverged loss, non-finite samples) leaves the outputs of the last good run as they were.
pub fn run_and_save(
    config: &ExperimentConfig,
    device: &Device,
    backend: &str,
    out_dir: &Path,
    observer: &mut dyn TrainObserver,
) -> Result<PipelineRun> {
    config.validate()?;
    let staged = io::StagedDir::create(out_dir)?;
    let run = run(config, device, backend, observer)?;
    write_outputs(&run, device, staged.path())?;
    staged.commit()?;
    Ok(run)
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
        config.diffusion.timesteps,
        model_path,
        device,
    )?;
    sample_and_measure(
        config,
        Stage {
            data: config.data.init(config.seeds().data),
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

/// `ddpm sample`: [`run_from_model`] (no untrained baseline), then write the samples, their
/// metrics, the config and the figures that need only a model into `out_dir`, staged as in
/// [`run_and_save`].
pub fn sample_and_save(
    config: &ExperimentConfig,
    model_path: &Path,
    device: &Device,
    backend: &str,
    out_dir: &Path,
) -> Result<PipelineRun> {
    config.validate()?;
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
    Ok(run)
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
    let s = &config.sampling;
    let t = config.diffusion.timesteps;
    match s.method {
        SamplerKind::Ddpm => format!("DDPM, T = {t}"),
        SamplerKind::Ddim => {
            let steps = if s.steps == 0 { t } else { s.steps };
            format!("DDIM {steps} of T = {t}, eta = {}", s.eta)
        }
    }
}

/// The paper times of the forward-process picture.
fn forward_times(timesteps: usize) -> Vec<usize> {
    let mut times: Vec<usize> = [0.0, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0]
        .iter()
        .map(|f| (f * timesteps as f64).round() as usize)
        .collect();
    times.dedup();
    times
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
    save_model(&run.model, &path(files::MODEL))?;

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

/// The guidance scales of `guidance_sweep.png`.
pub const GUIDANCE_SCALES: [f64; 5] = [0.0, 1.0, 2.0, 4.0, 8.0];

/// At most this many samples per scale in the sweep (it samples once per scale, each step a
/// doubled batch).
pub const SWEEP_SAMPLES: usize = 500;

/// A conditional model sampled at several guidance scales.
#[derive(Debug, Clone)]
pub struct GuidanceSweep {
    /// The class asked for at each sample (the same at every scale).
    pub wanted: Vec<usize>,
    /// The samples at each scale.
    pub samples: Vec<Vec<[f32; 2]>>,
    /// Class accuracy and per-class quality at each scale.
    pub reports: Vec<ConditionalReport>,
}

impl GuidanceSweep {
    /// One panel per scale, samples coloured by the class asked for.
    pub fn chart(&self, bounds: Bounds) -> ScatterPanels {
        ScatterPanels {
            name: "guidance_sweep",
            title: "Classifier-free guidance: eps_null + w (eps_class - eps_null)".into(),
            panels: self
                .reports
                .iter()
                .zip(&self.samples)
                .map(|(r, points)| {
                    Panel::by_class(
                        format!(
                            "w = {}: {:.0}% in class",
                            r.guidance_scale,
                            100.0 * r.accuracy
                        ),
                        points.clone(),
                        self.wanted.clone(),
                    )
                })
                .collect(),
            columns: self.samples.len().min(5),
            bounds,
            panel_size: 300,
        }
    }

    /// Accuracy and per-class energy distance (as a multiple of its floor) at each scale.
    pub fn table(&self) -> Table {
        let mut table = Table::new([
            "w",
            "class accuracy",
            "energy distance per class, x floor (mean)",
        ]);
        for r in &self.reports {
            let mean = r
                .per_class
                .iter()
                .map(|c| c.energy_distance.ratio_to_floor())
                .sum::<f64>()
                / r.per_class.len().max(1) as f64;
            table.push([
                format!("{}", r.guidance_scale),
                format!("{:.3}", r.accuracy),
                format!("{mean:.1}"),
            ]);
        }
        table
    }
}

/// Time each frame of the sampling animation is shown.
pub const ANIMATION_FRAME_MS: u32 = 80;

/// The tutorial's figures, built from a run's plain data. The command saves them as files; a
/// notebook shows them inline (`run.real_vs_generated().show()?`).
impl PipelineRun {
    /// An evenly strided subset of the training set, as many points as samples: the generators
    /// emit classes in blocks, so the first n points would show only one class.
    pub fn shown_data(&self) -> Vec<[f32; 2]> {
        let n = self.config.sampling.n_samples;
        let stride = (self.data.len() / n).max(1);
        self.data
            .points
            .iter()
            .step_by(stride)
            .take(n)
            .copied()
            .collect()
    }

    /// [`Self::shown_data`] with the class of each point.
    pub fn shown_labelled(&self) -> (Vec<[f32; 2]>, Vec<usize>) {
        let n = self.config.sampling.n_samples;
        let stride = (self.data.len() / n).max(1);
        (0..self.data.len())
            .step_by(stride)
            .take(n)
            .map(|i| (self.data.points[i], self.data.labels[i]))
            .unzip()
    }

    /// `conditional_samples.png`: the real classes beside samples coloured by the class they
    /// were asked for, with the class accuracy in the title.
    pub fn conditional_samples(&self) -> ScatterPanels {
        let (points, labels) = self.shown_labelled();
        let accuracy = self
            .report
            .classes
            .as_ref()
            .map_or(f64::NAN, |c| c.trained.accuracy);
        ScatterPanels {
            name: "conditional_samples",
            title: format!(
                "Class-conditional samples, w = {}: {:.1}% land in the class asked for",
                self.config.sampling.guidance_scale,
                100.0 * accuracy
            ),
            panels: vec![
                Panel::by_class(
                    format!("real {}, by class", self.config.data.dataset),
                    points,
                    labels,
                ),
                Panel::by_class(
                    "generated, coloured by the class asked for",
                    self.output.samples.clone(),
                    self.wanted.clone(),
                ),
            ],
            columns: 2,
            bounds: self.bounds(),
            panel_size: 420,
        }
    }

    /// Sample the trained conditional model at each guidance scale in `scales` (`n` points each,
    /// at most `sampling.n_samples`, every class in equal shares) and score each.
    pub fn guidance_sweep(
        &self,
        scales: &[f64],
        n: usize,
        device: &Device,
    ) -> Result<GuidanceSweep> {
        let mut config = self.config.clone();
        config.sampling.n_samples = n.min(config.sampling.n_samples);
        config.sampling.class = None;
        let wanted = wanted_classes(&config);
        if wanted.is_empty() {
            return Err(DdpmError::invalid(
                "model.num_classes",
                0,
                "must be > 0 for a guidance sweep: the model is unconditional",
            ));
        }
        let sampler = config.sampling.init(&self.schedule)?;
        let seeds = config.seeds();
        let reference = Dataset2d::generate(config.data.dataset, wanted.len(), seeds.eval);
        let floor = Dataset2d::generate(
            config.data.dataset,
            wanted.len(),
            seeds.eval.wrapping_add(1),
        );
        let mut sweep = GuidanceSweep {
            wanted: wanted.clone(),
            samples: Vec::new(),
            reports: Vec::new(),
        };
        for &w in scales {
            config.sampling.guidance_scale = w;
            let mut rng = NoiseSource::new(seeds.sample);
            let out = draw(
                &sampler,
                &self.model,
                &config,
                &wanted,
                &mut rng,
                &[],
                device,
            )?;
            sweep.reports.push(ConditionalReport::compute(
                &out.samples,
                &wanted,
                w,
                Labelled {
                    points: &reference.points,
                    labels: &reference.labels,
                },
                Labelled {
                    points: &floor.points,
                    labels: &floor.labels,
                },
            )?);
            sweep.samples.push(out.samples);
        }
        Ok(sweep)
    }

    /// The plotting window every scatter figure of this run shares.
    pub fn bounds(&self) -> Bounds {
        Bounds::covering(&self.data.points, 3.0)
    }

    /// `training_curve.png`: loss per step, its moving average and each epoch's mean.
    pub fn training_curve(&self) -> LossCurve {
        LossCurve {
            per_step: self.report.history.per_step.clone(),
            per_epoch: self.report.history.per_epoch.clone(),
            title: format!(
                "Training loss: {} ({}, {} epochs)",
                crate::loss::objective_name(&self.config.model, &self.config.train.objective()),
                self.config.data.dataset,
                self.config.train.epochs
            ),
        }
    }

    /// `noise_schedule.png`: the schedule used beside linear and cosine.
    pub fn noise_schedule(&self) -> Result<ScheduleChart> {
        let used = self.schedule.kind;
        let mut curves = vec![ScheduleCurve::from_schedule(
            format!("{used} (used)"),
            &self.schedule,
        )];
        for kind in [ScheduleKind::Linear, ScheduleKind::Cosine] {
            if kind != used {
                let other = ScheduleConfig {
                    schedule: kind,
                    ..self.config.diffusion.clone()
                }
                .init()?;
                curves.push(ScheduleCurve::from_schedule(kind.name(), &other));
            }
        }
        Ok(ScheduleChart { curves })
    }

    /// `forward_process.png`: the data noised in closed form at several t.
    pub fn forward_process(&self, device: &Device) -> Result<ScatterPanels> {
        let schedule = &self.schedule;
        let mut rng = NoiseSource::new(self.config.seeds().eval.wrapping_add(2));
        let times = forward_times(schedule.timesteps());
        let snapshots = noising_snapshots(schedule, &self.shown_data(), &times, &mut rng, device)?;
        Ok(ScatterPanels {
            name: "forward_process",
            title: format!(
                "Forward process q(x_t | x_0): {} dissolving into noise ({} schedule)",
                self.config.data.dataset, schedule.kind
            ),
            panels: snapshots
                .into_iter()
                .map(|f| Panel {
                    title: if f.t == 0 {
                        "t = 0 (data)".to_string()
                    } else {
                        format!(
                            "t = {}  alpha-bar = {:.3}",
                            f.t,
                            schedule.alpha_bar[f.t - 1]
                        )
                    },
                    points: f.points,
                    color: REAL,
                    labels: Vec::new(),
                })
                .collect(),
            columns: 4,
            bounds: self.bounds(),
            panel_size: 300,
        })
    }

    /// `reverse_process.png`: up to 8 recorded states from x_T to x_0.
    pub fn reverse_process(&self) -> Result<ScatterPanels> {
        let frames = self.trajectory()?;
        let picks = evenly_spaced_steps(frames.len() - 1, frames.len().min(8));
        Ok(ScatterPanels {
            name: "reverse_process",
            title: "Reverse process p_theta(x_{t-1} | x_t): noise becoming data".into(),
            panels: picks
                .iter()
                .rev() // evenly_spaced_steps counts down; frames run from x_T to x_0
                .map(|&i| Panel {
                    title: format!("t = {}", frames[i].t),
                    points: frames[i].points.clone(),
                    color: GENERATED,
                    labels: Vec::new(),
                })
                .collect(),
            columns: 4,
            bounds: self.bounds(),
            panel_size: 300,
        })
    }

    /// `sampling_animation.gif`: every recorded state, the last one held for a moment.
    pub fn sampling_animation(&self) -> Result<TrajectoryAnimation> {
        Ok(TrajectoryAnimation {
            frames: self
                .trajectory()?
                .iter()
                .map(|f| (f.t, f.points.clone()))
                .collect(),
            bounds: self.bounds(),
            hold_last: 15,
        })
    }

    fn trajectory(&self) -> Result<&[Frame]> {
        if self.output.trajectory.is_empty() {
            return Err(DdpmError::invalid(
                "sampling.trajectory_frames",
                0,
                "must be >= 2 to draw the reverse process: no states were recorded",
            ));
        }
        Ok(&self.output.trajectory)
    }

    /// `real_vs_generated.png`: the data beside the samples, with the energy distance, its floor
    /// and the untrained baseline in the title.
    pub fn real_vs_generated(&self) -> ScatterPanels {
        let shown = self.shown_data();
        let ed = &self.report.trained.energy_distance;
        let baseline = match &self.report.untrained {
            Some(u) => format!(", untrained {:.4}", u.energy_distance.value),
            None => String::new(),
        };
        ScatterPanels {
            name: "real_vs_generated",
            title: format!(
                "Real vs generated: energy distance {:.4} (floor {:.4}{baseline})",
                ed.value, ed.floor
            ),
            panels: vec![
                Panel {
                    title: format!("real {} (n = {})", self.config.data.dataset, shown.len()),
                    points: shown,
                    color: REAL,
                    labels: Vec::new(),
                },
                Panel {
                    title: format!(
                        "generated, {} (n = {})",
                        sampler_name(&self.config),
                        self.output.samples.len()
                    ),
                    points: self.output.samples.clone(),
                    color: GENERATED,
                    labels: Vec::new(),
                },
            ],
            columns: 2,
            bounds: self.bounds(),
            panel_size: 420,
        }
    }

    /// `marginal_distributions.png`: histograms of each coordinate, real against generated.
    pub fn marginals(&self) -> Marginals {
        Marginals {
            real: self.shown_data(),
            generated: self.output.samples.clone(),
            bins: 60,
        }
    }

    /// The quality metrics of the trained and the untrained model beside their floors.
    pub fn quality_table(&self) -> Table {
        let mut table = Table::new([
            "model",
            "energy distance",
            "x floor",
            "MMD^2 (RBF)",
            "x floor",
        ]);
        let reports = [
            Some(("trained", &self.report.trained)),
            self.report.untrained.as_ref().map(|u| ("untrained", u)),
        ];
        for (name, q) in reports.into_iter().flatten() {
            table.push([
                name.to_string(),
                format!("{:.5}", q.energy_distance.value),
                format!("{:.1}", q.energy_distance.ratio_to_floor()),
                format!("{:.5}", q.mmd_rbf.value),
                format!("{:.1}", q.mmd_rbf.ratio_to_floor()),
            ]);
        }
        table.push([
            "floor (real vs real)".to_string(),
            format!("{:.5}", self.report.trained.energy_distance.floor),
            "1.0".into(),
            format!("{:.5}", self.report.trained.mmd_rbf.floor),
            "1.0".into(),
        ]);
        table
    }
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
