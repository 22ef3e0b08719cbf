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
use crate::metrics::QualityReport;
use crate::model::MlpDenoiser;
use crate::plot::{
    self, Bounds, LossCurve, Marginals, Panel, ScatterPanels, ScheduleChart, ScheduleCurve,
};
use crate::plot::{GENERATED, REAL};
use crate::rng::{NoiseSource, seeded};
use crate::sampling::{DdpmSampler, SampleOutput, evenly_spaced_steps};
use crate::schedule::{NoiseSchedule, ScheduleConfig, ScheduleKind};
use crate::train::{LossHistory, TrainObserver, save_model, train};
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
}

/// Timings of the pipeline's stages, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timings {
    /// Training.
    pub train_seconds: f64,
    /// Optimizer steps per second.
    pub train_steps_per_second: f64,
    /// Sampling `n_samples` points through all T steps.
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
    /// baseline the trained model must beat.
    pub untrained: QualityReport,
    /// Mean loss of the last epoch.
    pub final_loss: f32,
    /// Stage timings.
    pub timings: Timings,
    /// The losses of training.
    pub history: LossHistory,
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
}

/// Train, sample and measure, without writing anything.
pub fn run(
    config: &ExperimentConfig,
    device: &Device,
    backend: &str,
    observer: &mut dyn TrainObserver,
) -> Result<PipelineRun> {
    config.validate()?;
    let seeds = config.seeds();
    let schedule = config.diffusion.init()?;
    let timesteps = schedule.timesteps();
    let data = config.data.init(seeds.data);
    let init = || seeded(device, seeds.init, || config.model.init(timesteps, device));

    let started = Instant::now();
    let trained = train(
        init(),
        &schedule,
        &data,
        &config.train,
        seeds.train,
        device,
        observer,
    )?;
    let train_seconds = started.elapsed().as_secs_f64();

    let sampler = DdpmSampler::new(&schedule, config.sampling.variance);
    let record = evenly_spaced_steps(timesteps, config.sampling.trajectory_frames);
    let n = config.sampling.n_samples;
    let started = Instant::now();
    let output = sampler.sample(
        &trained.model,
        n,
        &mut NoiseSource::new(seeds.sample),
        &record,
        device,
    )?;
    let sample_seconds = started.elapsed().as_secs_f64();
    let untrained = sampler.sample(&init(), n, &mut NoiseSource::new(seeds.sample), &[], device)?;

    let reference = Dataset2d::generate(config.data.dataset, n, seeds.eval);
    let floor = Dataset2d::generate(config.data.dataset, n, seeds.eval.wrapping_add(1));
    let steps = trained.history.per_step.len();
    let report = PipelineReport {
        backend: backend.to_string(),
        trained: QualityReport::compute(&output.samples, &reference.points, &floor.points)?,
        untrained: QualityReport::compute(&untrained.samples, &reference.points, &floor.points)?,
        final_loss: trained
            .history
            .per_epoch
            .last()
            .copied()
            .unwrap_or(f32::NAN),
        timings: Timings {
            train_seconds,
            train_steps_per_second: steps as f64 / train_seconds.max(1e-9),
            sample_seconds,
        },
        history: trained.history,
    };
    Ok(PipelineRun {
        report,
        data,
        schedule,
        model: trained.model,
        output,
    })
}

/// Run the pipeline and write every figure and result file into `out_dir`.
///
/// The config is validated before anything is created; each file is written atomically, so an
/// error leaves either a complete file or none.
pub fn run_and_save(
    config: &ExperimentConfig,
    device: &Device,
    backend: &str,
    out_dir: &Path,
    observer: &mut dyn TrainObserver,
) -> Result<PipelineRun> {
    config.validate()?;
    let run = run(config, device, backend, observer)?;
    std::fs::create_dir_all(out_dir).map_err(|e| DdpmError::io(out_dir, e))?;
    write_outputs(config, &run, device, out_dir)?;
    Ok(run)
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

fn write_outputs(
    config: &ExperimentConfig,
    run: &PipelineRun,
    device: &Device,
    out: &Path,
) -> Result<()> {
    let path = |name: &str| -> PathBuf { out.join(name) };
    let schedule = &run.schedule;
    let big_t = schedule.timesteps();
    let bounds = Bounds::covering(&run.data.points, 3.0);
    // An evenly strided subset of the training set, as many points as samples: the generators
    // emit classes in blocks, so the first n points would show only one class.
    let stride = (run.data.len() / config.sampling.n_samples).max(1);
    let show: Vec<[f32; 2]> = run
        .data
        .points
        .iter()
        .step_by(stride)
        .take(config.sampling.n_samples)
        .copied()
        .collect();

    io::write_atomic(&path(files::CONFIG_JSON), config.to_json().as_bytes())?;
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

    plot::save_png(
        &LossCurve {
            per_step: run.report.history.per_step.clone(),
            per_epoch: run.report.history.per_epoch.clone(),
            title: format!(
                "Training loss ({}, {} epochs)",
                config.data.dataset, config.train.epochs
            ),
        },
        &path(files::TRAINING_CURVE),
    )?;

    let mut curves = vec![ScheduleCurve::from_schedule(
        format!("{} (used)", schedule.kind),
        schedule,
    )];
    for kind in [ScheduleKind::Linear, ScheduleKind::Cosine] {
        if kind != schedule.kind {
            let other = ScheduleConfig {
                schedule: kind,
                ..config.diffusion.clone()
            }
            .init()?;
            curves.push(ScheduleCurve::from_schedule(kind.name(), &other));
        }
    }
    plot::save_png(&ScheduleChart { curves }, &path(files::NOISE_SCHEDULE))?;

    let mut rng = NoiseSource::new(config.seeds().eval.wrapping_add(2));
    let snapshots = noising_snapshots(schedule, &show, &forward_times(big_t), &mut rng, device)?;
    let panels = snapshots
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
        })
        .collect();
    plot::save_png(
        &ScatterPanels {
            name: "forward_process",
            title: format!(
                "Forward process q(x_t | x_0): {} dissolving into noise ({} schedule)",
                config.data.dataset, schedule.kind
            ),
            panels,
            columns: 4,
            bounds,
            panel_size: 300,
        },
        &path(files::FORWARD_PROCESS),
    )?;

    let frames = &run.output.trajectory;
    if !frames.is_empty() {
        let picks = evenly_spaced_steps(frames.len() - 1, frames.len().min(8));
        let panels = picks
            .iter()
            .rev() // evenly_spaced_steps counts down; frames run from x_T to x_0
            .map(|&i| &frames[i])
            .map(|f| Panel {
                title: format!("t = {}", f.t),
                points: f.points.clone(),
                color: GENERATED,
            })
            .collect();
        plot::save_png(
            &ScatterPanels {
                name: "reverse_process",
                title: "Reverse process p_theta(x_{t-1} | x_t): noise becoming data".into(),
                panels,
                columns: 4,
                bounds,
                panel_size: 300,
            },
            &path(files::REVERSE_PROCESS),
        )?;
        let animation = plot::TrajectoryAnimation {
            frames: frames.iter().map(|f| (f.t, f.points.clone())).collect(),
            bounds,
            hold_last: 15,
        };
        plot::save_gif(&animation, &path(files::SAMPLING_ANIMATION), 80)?;
    }

    let ed = &run.report.trained.energy_distance;
    plot::save_png(
        &ScatterPanels {
            name: "real_vs_generated",
            title: format!(
                "Real vs generated: energy distance {:.4} (floor {:.4}, untrained {:.4})",
                ed.value, ed.floor, run.report.untrained.energy_distance.value
            ),
            panels: vec![
                Panel {
                    title: format!("real {} (n = {})", config.data.dataset, show.len()),
                    points: show.clone(),
                    color: REAL,
                },
                Panel {
                    title: format!(
                        "generated, DDPM T = {big_t} (n = {})",
                        run.output.samples.len()
                    ),
                    points: run.output.samples.clone(),
                    color: GENERATED,
                },
            ],
            columns: 2,
            bounds,
            panel_size: 420,
        },
        &path(files::REAL_VS_GENERATED),
    )?;
    plot::save_png(
        &Marginals {
            real: show,
            generated: run.output.samples.clone(),
            bins: 60,
        },
        &path(files::MARGINALS),
    )?;
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
