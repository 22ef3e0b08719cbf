//! Side-by-side experiments: the same pipeline run under a base config and variants of it,
//! each a one-line change, compared by picture and metric.
//!
//! ```no_run
//! use ddpm_core::prelude::*;
//! let device = Backend::default_cpu().device()?;
//! let mut schedules = Comparison::new("Linear vs cosine", &ExperimentConfig::quick(), &device);
//! schedules.run("linear", |_| {})?;
//! schedules.run("cosine", |c| c.diffusion.schedule = ScheduleKind::Cosine)?;
//! println!("{}", schedules.table());
//! # Ok::<(), ddpm_core::DdpmError>(())
//! ```

use burn::prelude::Device;

use crate::config::ExperimentConfig;
use crate::display::Table;
use crate::error::Result;
use crate::pipeline::{self, PipelineRun, RunOptions};
use crate::plot::{GENERATED, PALETTE, Panel, REAL, SHOWN_PER_PANEL, ScatterPanels};
use crate::train::Silent;

mod grid;
mod images;

pub use grid::{
    ExperimentName, ExperimentReport, GridResults, ImageRunSummary, RunSummary, SEED_STRIDE,
    Variant, VariantResult,
};

/// Run the grid `name` from `base`, once per master seed `base.seed + k * SEED_STRIDE` for
/// `k < seeds`: the repeats are independent. On points or images, as `base.data` says (see
/// [`images`]).
///
/// Variants that differ only in how they sample share one trained model per seed (see
/// [`Comparison::run`]). `progress` hears about each run as it finishes, with a one-line
/// summary.
pub fn run_experiment(
    name: ExperimentName,
    base: &ExperimentConfig,
    seeds: usize,
    device: &Device,
    progress: &mut dyn FnMut(&str, u64, &str),
) -> Result<ExperimentReport> {
    let variants = grid::checked_variants(name, base, seeds)?;
    if base.data.dataset.is_images() {
        images::run_image_experiment(name, &variants, base, seeds, device, progress)
    } else {
        grid::run_points_experiment(name, &variants, base, seeds, device, progress)
    }
}

/// Runs of one experiment: a base config and labelled variants of it, in order.
#[derive(Debug, Clone)]
pub struct Comparison {
    title: String,
    base: ExperimentConfig,
    device: Device,
    runs: Vec<(String, PipelineRun)>,
}

impl Comparison {
    /// An empty comparison whose variants start from `base`.
    pub fn new(title: impl Into<String>, base: &ExperimentConfig, device: &Device) -> Self {
        Self {
            title: title.into(),
            base: base.clone(),
            device: device.clone(),
            runs: Vec::new(),
        }
    }

    /// Run the pipeline (train, sample, measure) on `base` changed by `edit`, label it, and
    /// return the run. The edited config is validated first.
    ///
    /// A variant that differs from an earlier run only in its `sampling` section (DDIM steps,
    /// eta, the variance...) samples that run's trained model instead of training a new one:
    /// same config and seed would train the same weights anyway.
    pub fn run(
        &mut self,
        label: impl Into<String>,
        edit: impl FnOnce(&mut ExperimentConfig),
    ) -> Result<&PipelineRun> {
        let mut config = self.base.clone();
        edit(&mut config);
        // The untrained baseline is the same for every variant of a comparison's question and
        // would double the sampling time, so comparisons skip it.
        let options = RunOptions {
            untrained_baseline: false,
        };
        let run = match self.trained_like(&config) {
            Some(earlier) => pipeline::resample(earlier, &config.sampling, &self.device, options)?,
            None => {
                let backend = crate::backend::Backend::label(&self.device);
                pipeline::run_with_options(&config, &self.device, &backend, &mut Silent, options)?
            }
        };
        self.runs.push((label.into(), run));
        Ok(&self.runs[self.runs.len() - 1].1)
    }

    /// An earlier run whose config differs from `config` only in how it samples.
    fn trained_like(&self, config: &ExperimentConfig) -> Option<&PipelineRun> {
        self.runs
            .iter()
            .map(|(_, run)| run)
            .find(|run| same_training(&run.config, config))
    }

    /// Whether run `index` sampled the trained model of an earlier run (see [`Self::run`]).
    pub fn shares_training(&self, index: usize) -> bool {
        let config = &self.runs[index].1.config;
        self.runs[..index]
            .iter()
            .any(|(_, earlier)| same_training(&earlier.config, config))
    }

    /// Add a run made elsewhere (e.g. the base config, run once and shared by several
    /// comparisons: the same config and seed give the same numbers, so there is no need to train
    /// it again).
    pub fn push(&mut self, label: impl Into<String>, run: PipelineRun) {
        self.runs.push((label.into(), run));
    }

    /// The runs so far, with their labels.
    pub fn runs(&self) -> &[(String, PipelineRun)] {
        &self.runs
    }

    /// Every run's samples (at most [`SHOWN_PER_PANEL`] of them; the metrics use all), titled
    /// with its label, its 1-NN accuracy and verdict and its energy distance as a multiple of
    /// the floor, in the data's window. Runs on one dataset share a single data panel in front; runs
    /// on different datasets each get their data beside their samples.
    pub fn chart(&self) -> ScatterPanels {
        let Some((_, first)) = self.runs.first() else {
            return ScatterPanels::grid(self.title.clone(), Vec::new(), 1);
        };
        let one_dataset = self
            .runs
            .iter()
            .all(|(_, r)| r.config.data.dataset == first.config.data.dataset);
        let data_panel = |run: &PipelineRun| {
            Panel::new(
                format!("data: {}", run.config.data.dataset),
                run.shown_data(),
                REAL,
            )
        };
        let mut panels = Vec::new();
        if one_dataset {
            panels.push(data_panel(first));
        }
        for (i, (label, run)) in self.runs.iter().enumerate() {
            if !one_dataset {
                panels.push(data_panel(run));
            }
            let quality = &run.report.trained;
            let color = if one_dataset {
                PALETTE[(i + 1) % PALETTE.len()]
            } else {
                GENERATED
            };
            panels.push(Panel::new(
                format!(
                    "{label}: 1-NN {:.2} {}, ED {:.1}x",
                    quality.nn1_accuracy.value,
                    quality.verdict(),
                    quality.energy_distance.ratio_to_floor(),
                ),
                run.output.samples.clone(),
                color,
            ));
        }
        let columns = if one_dataset { panels.len().min(4) } else { 4 };
        let panels = panels.into_iter().map(|p| p.with_at_most(SHOWN_PER_PANEL));
        let mut chart = ScatterPanels::grid(self.title.clone(), panels, columns);
        // The data's window, so that a run's far outliers cannot shrink everything else.
        let all_data: Vec<[f32; 2]> = self
            .runs
            .iter()
            .flat_map(|(_, r)| r.data.points.iter().copied())
            .collect();
        chart.bounds = crate::plot::Bounds::covering(&all_data, 3.0);
        chart
    }

    /// One row per run, narrow enough for a notebook cell at 1024 px: the verdict beside the
    /// run's label, the 1-NN accuracy, precision and recall, the energy distance and MMD as
    /// multiples of their floors (the raw values are in each run's report), the final loss of
    /// the run's own objective and wall times.
    pub fn table(&self) -> Table {
        let mut table = Table::new([
            "run (verdict)",
            "1-NN acc.",
            "precision",
            "recall",
            "ED x floor",
            "MMD^2 x floor",
            "final loss",
            "train s",
            "sample s",
        ]);
        for (i, (label, run)) in self.runs.iter().enumerate() {
            let r = &run.report;
            let train_seconds = if self.shares_training(i) {
                "(shared)".to_string()
            } else {
                format!("{:.1}", r.timings.train_seconds)
            };
            let label = format!("{label} ({})", r.trained.verdict());
            table.push([
                label,
                format!("{:.3}", r.trained.nn1_accuracy.value),
                format!("{:.3}", r.trained.precision.value),
                format!("{:.3}", r.trained.recall.value),
                format!("{:.1}", r.trained.energy_distance.ratio_to_floor()),
                format!("{:.1}", r.trained.mmd_rbf.ratio_to_floor()),
                format!("{:.4}", r.final_loss),
                train_seconds,
                format!("{:.1}", r.timings.sample_seconds),
            ]);
        }
        table
    }
}

/// Whether two configs train the same model (they may sample differently).
fn same_training(a: &ExperimentConfig, b: &ExperimentConfig) -> bool {
    let mut a = a.clone();
    a.sampling = b.sampling.clone();
    a == *b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::SamplerKind;

    #[test]
    fn a_variant_that_only_samples_differently_reuses_the_trained_model() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let mut base = ExperimentConfig::default();
        base.data.n_points = 256;
        base.diffusion.timesteps = 40;
        base.train.epochs = 2;
        base.train.batch_size = 64;
        base.sampling.n_samples = 100;
        let mut comparison = Comparison::new("reuse", &base, &device);
        comparison.run("ddpm", |_| {}).unwrap();
        comparison
            .run("ddim 10", |c| {
                c.sampling.method = SamplerKind::Ddim;
                c.sampling.steps = 10;
            })
            .unwrap();
        comparison
            .run("2 more epochs", |c| c.train.epochs = 4)
            .unwrap();
        let runs = comparison.runs();
        let (ddpm, ddim, longer) = (&runs[0].1, &runs[1].1, &runs[2].1);
        assert_eq!(ddim.report.history, ddpm.report.history);
        assert_eq!(
            ddim.report.timings.train_seconds,
            ddpm.report.timings.train_seconds
        );
        assert_ne!(ddim.output.samples, ddpm.output.samples);
        assert_eq!(longer.report.history.per_epoch.len(), 4);
        assert_eq!(
            ddpm.report.backend,
            crate::backend::Backend::default_cpu().name()
        );
        let table = comparison.table();
        let train_s = table.headers.iter().position(|h| h == "train s").unwrap();
        assert_eq!(table.rows[1][train_s], "(shared)");
        assert_ne!(table.rows[2][train_s], "(shared)");
    }
}
