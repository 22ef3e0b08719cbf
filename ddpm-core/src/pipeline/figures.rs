//! The tutorial's figures, built from a run's plain data: the command saves them as files
//! ([`super::run_and_save`]), a notebook shows them inline (`run.real_vs_generated().show()?`).
//! Running the stages is in the parent module; nothing here trains or writes.

use burn::prelude::*;

use super::{PipelineRun, draw, sampler_name, wanted_classes};
use crate::data::Dataset2d;
use crate::diffusion::noising_snapshots;
use crate::display::Table;
use crate::error::{DdpmError, Result};
use crate::metrics::ConditionalReport;
use crate::plot::{
    Bounds, LossCurve, Marginals, Panel, ScatterPanels, ScheduleChart, ScheduleCurve,
    TrajectoryAnimation,
};
use crate::plot::{GENERATED, REAL, SHOWN_PER_PANEL};
use crate::rng::NoiseSource;
use crate::sampling::{Frame, evenly_spaced_steps};
use crate::schedule::{ScheduleConfig, ScheduleKind};
use crate::time::PaperTime;

/// The paper times of the forward-process picture.
fn forward_times(timesteps: usize) -> Vec<PaperTime> {
    let mut times: Vec<PaperTime> = [0.0, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0]
        .iter()
        .map(|f| PaperTime((f * timesteps as f64).round() as usize))
        .collect();
    times.dedup();
    times
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
                    .with_at_most(SHOWN_PER_PANEL)
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
        let reference = Dataset2d::generate(self.data.kind, wanted.len(), seeds.eval);
        let floor = Dataset2d::generate(self.data.kind, wanted.len(), seeds.eval.wrapping_add(1));
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
                reference.labelled(),
                floor.labelled(),
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
                crate::loss::objective_name(
                    &self.config.model.head(),
                    &self.config.train.objective()
                ),
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
                    title: match f.t.index() {
                        None => "t = 0 (data)".to_string(),
                        Some(i) => format!("t = {}: alpha-bar {:.3}", f.t, schedule.alpha_bar[i]),
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
                .map(|f| (f.t.0, f.points.clone()))
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

    /// `real_vs_generated.png`: the data beside the samples, with the 1-NN accuracy against its
    /// floor, the energy distance in floors, and the untrained baseline's in the title.
    pub fn real_vs_generated(&self) -> ScatterPanels {
        let shown = self.shown_data();
        let baseline = match &self.report.untrained {
            Some(u) => format!(
                "; untrained: 1-NN acc. {:.2}, ED {:.0}x floor",
                u.nn1_accuracy.value,
                u.energy_distance.ratio_to_floor()
            ),
            None => String::new(),
        };
        ScatterPanels {
            name: "real_vs_generated",
            title: format!(
                "Real vs generated: {}{baseline}",
                self.report.trained.summary()
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

    /// The quality metrics of the trained and the untrained model beside their floors: local
    /// structure (1-NN accuracy, precision, recall) first, then global shape (energy distance and
    /// MMD, as multiples of their floors).
    pub fn quality_table(&self) -> Table {
        let mut table = Table::new([
            "model",
            "1-NN accuracy (0.5 = real)",
            "precision",
            "recall",
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
                format!("{name} ({})", q.verdict()),
                format!("{:.3}", q.nn1_accuracy.value),
                format!("{:.3}", q.precision.value),
                format!("{:.3}", q.recall.value),
                format!("{:.5}", q.energy_distance.value),
                format!("{:.1}", q.energy_distance.ratio_to_floor()),
                format!("{:.5}", q.mmd_rbf.value),
                format!("{:.1}", q.mmd_rbf.ratio_to_floor()),
            ]);
        }
        let floor = &self.report.trained;
        table.push([
            "floor (real vs real)".to_string(),
            format!("{:.3}", floor.nn1_accuracy.floor),
            format!("{:.3}", floor.precision.floor),
            format!("{:.3}", floor.recall.floor),
            format!("{:.5}", self.report.trained.energy_distance.floor),
            "1.0".into(),
            format!("{:.5}", self.report.trained.mmd_rbf.floor),
            "1.0".into(),
        ]);
        table
    }
}
