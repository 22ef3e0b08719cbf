//! Named experiment grids, the seed's "experiments to try" as `ddpm experiment <name>`: each a
//! base config and a list of one-change variants, run with fixed seeds and written out as a
//! comparison chart, a markdown table and JSON.

use std::path::{Path, PathBuf};

use burn::prelude::Device;
use serde::Serialize;

use super::Comparison;
use crate::choice::choice_enum;
use crate::config::ExperimentConfig;
use crate::data::Dataset2d;
use crate::diffusion::Prediction;
use crate::display::Table;
use crate::error::{DdpmError, Result};
use crate::loss::{LossWeighting, nll_bound};
use crate::model::{Activation, Denoise, ModelVariance, TimeEmbeddingKind};
use crate::pipeline::PipelineRun;
use crate::pipeline::images::ClassifierScore;
use crate::sampling::{PosteriorVariance, SamplerKind};
use crate::schedule::ScheduleKind;
use crate::{io, plot};

choice_enum! {
    /// The experiment grids `ddpm experiment <name>` runs.
    pub enum ExperimentName ("experiment") {
        /// Noise schedules: linear, cosine, quadratic, sigmoid.
        Schedules = "schedules",
        /// Number of diffusion steps T: 50, 200, 1000.
        Steps = "steps",
        /// Time embedding: sinusoidal, learned, none (the ablation).
        Embedding = "embedding",
        /// Width x depth, then the activation at the base size.
        Network = "network",
        /// DDIM with 10, 20, 50, 100 and 1000 steps against DDPM, on one model with T = 1000.
        Ddim = "ddim",
        /// Prediction targets: epsilon, x0, v.
        Targets = "targets",
        /// Reverse-step variance: fixed small, fixed large, learned range; with the NLL bound.
        Variance = "variance",
        /// Loss weighting: L_simple against min-SNR-5, for each prediction target.
        Weighting = "weighting",
        /// Classifier-free guidance scale w of a class-conditional model: 0, 1, 2, 3, 5, 8, with
        /// class accuracy and per-class quality.
        Guidance = "guidance",
    }
}

/// One variant of a grid: a label and the change it makes to the base config.
pub struct Variant {
    /// Shown in the chart and the table.
    pub label: String,
    /// The one change.
    pub edit: Box<dyn Fn(&mut ExperimentConfig)>,
}

impl Variant {
    fn new(label: impl Into<String>, edit: impl Fn(&mut ExperimentConfig) + 'static) -> Self {
        Self {
            label: label.into(),
            edit: Box::new(edit),
        }
    }
}

impl std::fmt::Debug for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Variant")
            .field("label", &self.label)
            .finish()
    }
}

impl ExperimentName {
    /// The chart's and table's title.
    pub fn title(self) -> &'static str {
        match self {
            ExperimentName::Schedules => "Noise schedule",
            ExperimentName::Steps => "Number of diffusion steps T",
            ExperimentName::Embedding => "Time embedding",
            ExperimentName::Network => "Network width, depth and activation",
            ExperimentName::Ddim => "DDIM steps: speed against quality (T = 1000)",
            ExperimentName::Targets => "Prediction target",
            ExperimentName::Variance => "Reverse-step variance",
            ExperimentName::Weighting => "Loss weighting",
            ExperimentName::Guidance => "Classifier-free guidance scale w",
        }
    }

    /// Whether the grid can run on `dataset`: the network grids (embedding, width and depth)
    /// change the MLP, so they run on points only.
    pub fn applies_to(self, dataset: crate::data::Dataset) -> bool {
        !(dataset.is_images()
            && matches!(self, ExperimentName::Embedding | ExperimentName::Network))
    }

    /// Whether the table reports the NLL bound of each run (it costs T forward passes).
    pub fn reports_nll(self) -> bool {
        self == ExperimentName::Variance
    }

    /// Whether the table reports class accuracy (conditional models only).
    pub fn reports_classes(self) -> bool {
        self == ExperimentName::Guidance
    }

    /// The grid's variants, in order. The base config's own values are among them where they
    /// fit, so the base is always a row.
    pub fn variants(self) -> Vec<Variant> {
        match self {
            ExperimentName::Schedules => ScheduleKind::ALL
                .iter()
                .map(|&kind| Variant::new(kind.name(), move |c| c.diffusion.schedule = kind))
                .collect(),
            ExperimentName::Steps => [50usize, 200, 1000]
                .into_iter()
                .map(|t| Variant::new(format!("T = {t}"), move |c| c.diffusion.timesteps = t))
                .collect(),
            ExperimentName::Embedding => TimeEmbeddingKind::ALL
                .iter()
                .map(|&kind| {
                    Variant::new(kind.name(), move |c| {
                        if let Some(mlp) = c.model.mlp_mut() {
                            mlp.time_embedding = kind;
                        }
                    })
                })
                .collect(),
            ExperimentName::Network => {
                let sizes = [(32usize, 1usize), (64, 2), (128, 3), (256, 4)];
                let mut variants: Vec<Variant> = sizes
                    .into_iter()
                    .map(|(width, depth)| {
                        Variant::new(format!("{width} x {depth}, gelu"), move |c| {
                            if let Some(mlp) = c.model.mlp_mut() {
                                mlp.hidden_size = width;
                                mlp.depth = depth;
                                mlp.activation = Activation::Gelu;
                            }
                        })
                    })
                    .collect();
                for &act in Activation::ALL.iter().filter(|&&a| a != Activation::Gelu) {
                    variants.push(Variant::new(format!("128 x 3, {act}"), move |c| {
                        if let Some(mlp) = c.model.mlp_mut() {
                            mlp.hidden_size = 128;
                            mlp.depth = 3;
                            mlp.activation = act;
                        }
                    }));
                }
                variants
            }
            ExperimentName::Ddim => {
                let ddim = |steps: usize| {
                    Variant::new(format!("DDIM {steps} steps"), move |c| {
                        c.diffusion.timesteps = 1000;
                        c.sampling.method = SamplerKind::Ddim;
                        c.sampling.steps = steps;
                        c.sampling.eta = 0.0;
                    })
                };
                std::iter::once(Variant::new("DDPM 1000 steps", |c| {
                    c.diffusion.timesteps = 1000;
                    c.sampling.method = SamplerKind::Ddpm;
                }))
                .chain([10, 20, 50, 100, 1000].map(ddim))
                .collect()
            }
            ExperimentName::Targets => Prediction::ALL
                .iter()
                .map(|&p| Variant::new(p.name(), move |c| c.model.prediction = p))
                .collect(),
            ExperimentName::Variance => vec![
                // DDPM sampling throughout: DDIM's noise is set by eta, not by the variance.
                Variant::new("fixed small (beta-tilde)", |c| {
                    c.model.variance = ModelVariance::Fixed;
                    c.sampling.variance = PosteriorVariance::FixedSmall;
                    c.sampling.method = SamplerKind::Ddpm;
                }),
                Variant::new("fixed large (beta)", |c| {
                    c.model.variance = ModelVariance::Fixed;
                    c.sampling.variance = PosteriorVariance::FixedLarge;
                    c.sampling.method = SamplerKind::Ddpm;
                }),
                Variant::new("learned range (hybrid loss)", |c| {
                    c.model.variance = ModelVariance::LearnedRange;
                    c.sampling.method = SamplerKind::Ddpm;
                }),
            ],
            ExperimentName::Weighting => Prediction::ALL
                .iter()
                .flat_map(|&p| {
                    [LossWeighting::Simple, LossWeighting::MinSnr].map(move |w| {
                        Variant::new(format!("{p}, {w}"), move |c| {
                            c.model.prediction = p;
                            c.train.weighting = w;
                        })
                    })
                })
                .collect(),
            // One conditional model per seed (the variants differ only in how they sample).
            ExperimentName::Guidance => [0.0, 1.0, 2.0, 3.0, 5.0, 8.0]
                .into_iter()
                .map(|w| {
                    Variant::new(format!("w = {w}"), move |c| {
                        c.model.num_classes = c.data.dataset.num_classes();
                        c.sampling.guidance_scale = w;
                        c.sampling.class = None;
                    })
                })
                .collect(),
        }
    }
}

/// One run of a grid, as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The master seed of this run.
    pub seed: u64,
    /// Energy distance of the samples to a held-out draw.
    pub energy_distance: f64,
    /// The same between two draws of the data: the best reachable.
    pub energy_distance_floor: f64,
    /// MMD^2 (multi-bandwidth RBF).
    pub mmd: f64,
    /// Its floor.
    pub mmd_floor: f64,
    /// The leave-one-out 1-NN two-sample accuracy against a held-out draw (0.5 = real).
    pub nn1_accuracy: f64,
    /// The same between two draws of the data.
    pub nn1_accuracy_floor: f64,
    /// k-NN precision: the share of samples where real data lies.
    pub precision: f64,
    /// k-NN recall: the share of real data the samples cover.
    pub recall: f64,
    /// Mean loss of the last epoch.
    pub final_loss: f32,
    /// Training wall time (of the model this run shares, if it shares one).
    pub train_seconds: f64,
    /// Whether this run sampled the trained model of an earlier variant (they differ only in
    /// how they sample).
    pub shared_training: bool,
    /// Sampling wall time.
    pub sample_seconds: f64,
    /// The NLL bound of a held-out draw in bits/dim, when the grid reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nll_bits_per_dim: Option<f64>,
    /// A conditional model's class accuracy, with the per-class energy distance (mean over the
    /// classes) and its floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassSummary>,
}

/// A conditional run's class metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassSummary {
    /// Share of samples a nearest-neighbour classifier puts in the class asked for.
    pub accuracy: f64,
    /// Energy distance of each class's samples to its real points, averaged over the classes.
    pub class_energy_distance: f64,
    /// Its floor (two real draws), averaged the same way.
    pub class_energy_distance_floor: f64,
}

/// One image run of a grid, as written to JSON: the classifier's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageRunSummary {
    /// The master seed of this run.
    pub seed: u64,
    /// The samples' Fréchet classifier distance and class accuracy.
    pub trained: ClassifierScore,
    /// Held-out real images: the best reachable.
    pub floor: ClassifierScore,
    /// Mean loss of the last epoch.
    pub final_loss: f32,
    /// Training wall time (of the model this run shares, if it shares one).
    pub train_seconds: f64,
    /// Whether this run sampled the trained model of an earlier variant.
    pub shared_training: bool,
    /// Sampling wall time.
    pub sample_seconds: f64,
}

/// A variant's runs over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantResult<S = RunSummary> {
    /// The variant's label.
    pub label: String,
    /// One run per seed.
    pub runs: Vec<S>,
}

/// Every variant's results: of 2-D runs, or of image runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum GridResults {
    /// Runs on points, measured against fresh draws of the distribution.
    Points(Vec<VariantResult>),
    /// Runs on images, measured by the classifier.
    Images(Vec<VariantResult<ImageRunSummary>>),
}

impl<S> VariantResult<S> {
    /// Mean and sample standard deviation of `f` over the seeds.
    pub fn mean_sd(&self, f: impl Fn(&S) -> f64) -> (f64, f64) {
        let values: Vec<f64> = self.runs.iter().map(f).collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        (mean, var.sqrt())
    }
}

/// What `ddpm experiment <name>` measured.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    /// The grid's name.
    pub name: ExperimentName,
    /// Its title.
    pub title: String,
    /// The config every variant starts from (its seed is the first of the seeds).
    pub base: ExperimentConfig,
    /// One entry per variant, in the grid's order.
    pub variants: GridResults,
    /// The backend it ran on.
    pub backend: String,
    /// The first seed's runs, for the chart (not serialised).
    #[serde(skip)]
    pub comparison: Option<Comparison>,
    /// The first seed's image samples, for the chart (not serialised).
    #[serde(skip)]
    pub image_chart: Option<crate::plot::ImageGrid>,
}

impl ExperimentReport {
    /// One row per variant: the 1-NN accuracy, precision and recall (local structure), the
    /// energy distance (mean ± sd over the seeds), energy distance and MMD as multiples of their
    /// floors (global shape), and wall times.
    ///
    /// A multiple of the floor is the mean metric over the mean floor: the floor (two draws of
    /// real data) varies from seed to seed, so averaging per-seed ratios would mostly measure
    /// the floor's own noise.
    pub fn table(&self) -> Table {
        let variants = match &self.variants {
            GridResults::Points(variants) => variants,
            GridResults::Images(variants) => return image_table(variants),
        };
        let seeds = variants.first().map_or(0, |v| v.runs.len());
        let pm = |(mean, sd): (f64, f64), digits: usize| {
            if seeds > 1 {
                format!("{mean:.digits$} ± {sd:.digits$}")
            } else {
                format!("{mean:.digits$}")
            }
        };
        let mut headers = vec![
            "variant".to_string(),
            "1-NN acc. (0.5 = real)".into(),
            "precision".into(),
            "recall".into(),
            "energy distance".into(),
            "ED / floor".into(),
            "MMD^2 / floor".into(),
            "train s".into(),
            "sample s".into(),
        ];
        if self.name.reports_nll() {
            headers.push("NLL bound (bits/dim)".into());
        }
        if self.name.reports_classes() {
            headers.push("class accuracy".into());
            headers.push("per-class ED / floor".into());
        }
        let mut table = Table::new(headers);
        for v in variants {
            let mean = |f: fn(&RunSummary) -> f64| v.mean_sd(f).0;
            let ed_ratio = mean(|r| r.energy_distance) / mean(|r| r.energy_distance_floor);
            let mmd_ratio = mean(|r| r.mmd) / mean(|r| r.mmd_floor);
            let mut row = vec![
                v.label.clone(),
                pm(v.mean_sd(|r| r.nn1_accuracy), 3),
                pm(v.mean_sd(|r| r.precision), 3),
                pm(v.mean_sd(|r| r.recall), 3),
                pm(v.mean_sd(|r| r.energy_distance), 5),
                format!("{ed_ratio:.1}"),
                format!("{mmd_ratio:.1}"),
                if v.runs.iter().all(|r| r.shared_training) {
                    "(shared)".to_string()
                } else {
                    pm(v.mean_sd(|r| r.train_seconds), 1)
                },
                pm(v.mean_sd(|r| r.sample_seconds), 2),
            ];
            if self.name.reports_nll() {
                row.push(pm(v.mean_sd(|r| r.nll_bits_per_dim.unwrap_or(f64::NAN)), 3));
            }
            if self.name.reports_classes() {
                let class = |f: fn(&ClassSummary) -> f64| {
                    move |r: &RunSummary| r.classes.as_ref().map_or(f64::NAN, f)
                };
                row.push(pm(v.mean_sd(class(|c| c.accuracy)), 3));
                let ratio = v.mean_sd(class(|c| c.class_energy_distance)).0
                    / v.mean_sd(class(|c| c.class_energy_distance_floor)).0;
                row.push(format!("{ratio:.1}"));
            }
            table.push(row);
        }
        table
    }

    /// Write `comparison.png` (the first seed's samples), `results.md` and `results.json` into
    /// `dir`, each atomically. Returns the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|e| DdpmError::io(dir, e))?;
        let mut written = Vec::new();
        if let Some(comparison) = &self.comparison {
            let path = dir.join("comparison.png");
            plot::save_png(&comparison.chart(), &path)?;
            written.push(path);
        }
        if let Some(grid) = &self.image_chart {
            let path = dir.join("comparison.png");
            io::write_atomic(&path, grid.to_png()?.bytes())?;
            written.push(path);
        }
        let seeds: Vec<u64> = match &self.variants {
            GridResults::Points(v) => v
                .first()
                .map(|v| v.runs.iter().map(|r| r.seed).collect())
                .unwrap_or_default(),
            GridResults::Images(v) => v
                .first()
                .map(|v| v.runs.iter().map(|r| r.seed).collect())
                .unwrap_or_default(),
        };
        let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
        let floors = match &self.variants {
            GridResults::Points(_) => {
                "Floors: energy distance and MMD^2 between two draws of the data; `/ floor` is \
                 the mean metric over the mean floor."
            }
            GridResults::Images(_) => "Floor: held-out real images scored by the same classifier.",
        };
        let markdown = format!(
            "# {}\n\nBackend {}, seeds {}; values and times are the mean{} over the \
             seeds. {floors}\n\n{}",
            self.title,
            self.backend,
            seeds.join(", "),
            if seeds.len() > 1 { " ± sd" } else { "" },
            self.table().to_markdown()
        );
        let md = dir.join("results.md");
        io::write_atomic(&md, markdown.as_bytes())?;
        written.push(md);
        let json = dir.join("results.json");
        let text = serde_json::to_string_pretty(self).expect("report serialises");
        io::write_atomic(&json, text.as_bytes())?;
        written.push(json);
        Ok(written)
    }
}

/// The distance between the master seeds of repeated runs. [`ExperimentConfig::seeds`] offsets
/// each purpose's seed from the master seed by at most 3 (and 1_000_003 for evaluation), so master
/// seeds this far apart (fewer than 100 of them) never share a random stream.
pub const SEED_STRIDE: u64 = 10_000;

/// The grid's variants, each checked to be a valid change of `base`, and the seed count checked.
pub(super) fn checked_variants(
    name: ExperimentName,
    base: &ExperimentConfig,
    seeds: usize,
) -> Result<Vec<Variant>> {
    if !(1..=100).contains(&seeds) {
        return Err(DdpmError::invalid("seeds", seeds, "must be in 1..=100"));
    }
    base.validate()?;
    if !name.applies_to(base.data.dataset) {
        return Err(DdpmError::invalid(
            "experiment",
            name,
            format!(
                "changes the MLP and does not apply to {} (a U-Net); on images run schedules, \
                 steps, ddim, targets, variance, weighting or guidance",
                base.data.dataset
            ),
        ));
    }
    let variants = name.variants();
    for v in &variants {
        let mut config = base.clone();
        (v.edit)(&mut config);
        config.validate().map_err(|e| DdpmError::InvalidInput {
            field: "experiment",
            message: format!("variant `{}` of `{name}`: {e}", v.label),
        })?;
    }
    Ok(variants)
}

/// [`super::run_experiment`] on points: each run measured against fresh draws of the
/// distribution, the first seed's samples kept for the chart.
pub(super) fn run_points_experiment(
    name: ExperimentName,
    variants: &[Variant],
    base: &ExperimentConfig,
    seeds: usize,
    device: &Device,
    progress: &mut dyn FnMut(&str, u64, &str),
) -> Result<ExperimentReport> {
    let mut results: Vec<VariantResult> = variants
        .iter()
        .map(|v| VariantResult {
            label: v.label.clone(),
            runs: Vec::new(),
        })
        .collect();
    let mut first = None;
    for k in 0..seeds as u64 {
        let mut seeded_base = base.clone();
        seeded_base.seed = base.seed.wrapping_add(k * SEED_STRIDE);
        let mut comparison = Comparison::new(name.title(), &seeded_base, device);
        for (v, result) in variants.iter().zip(&mut results) {
            comparison.run(v.label.clone(), |c| (v.edit)(c))?;
            let index = comparison.runs().len() - 1;
            let shared_training = comparison.shares_training(index);
            let run = &comparison.runs()[index].1;
            let nll = if name.reports_nll() {
                Some(held_out_nll(run, device)?)
            } else {
                None
            };
            let r = &run.report;
            result.runs.push(RunSummary {
                seed: seeded_base.seed,
                energy_distance: r.trained.energy_distance.value,
                energy_distance_floor: r.trained.energy_distance.floor,
                mmd: r.trained.mmd_rbf.value,
                mmd_floor: r.trained.mmd_rbf.floor,
                nn1_accuracy: r.trained.nn1_accuracy.value,
                nn1_accuracy_floor: r.trained.nn1_accuracy.floor,
                precision: r.trained.precision.value,
                recall: r.trained.recall.value,
                final_loss: r.final_loss,
                train_seconds: r.timings.train_seconds,
                shared_training,
                sample_seconds: r.timings.sample_seconds,
                nll_bits_per_dim: nll,
                classes: r.classes.as_ref().map(|c| class_summary(&c.trained)),
            });
            let line = format!(
                "{}, train {:.1} s, sample {:.2} s",
                r.trained.summary(),
                r.timings.train_seconds,
                r.timings.sample_seconds
            );
            progress(&v.label, seeded_base.seed, &line);
        }
        if first.is_none() {
            first = Some(comparison);
        }
    }
    Ok(ExperimentReport {
        name,
        title: name.title().to_string(),
        base: base.clone(),
        variants: GridResults::Points(results),
        backend: crate::backend::Backend::label(device),
        comparison: first,
        image_chart: None,
    })
}

fn class_summary(report: &crate::metrics::ConditionalReport) -> ClassSummary {
    let k = report.per_class.len().max(1) as f64;
    let mean = |f: fn(&crate::metrics::ClassReport) -> f64| {
        report.per_class.iter().map(f).sum::<f64>() / k
    };
    ClassSummary {
        accuracy: report.accuracy,
        class_energy_distance: mean(|c| c.energy_distance.value),
        class_energy_distance_floor: mean(|c| c.energy_distance.floor),
    }
}

/// Points in the NLL bound's held-out draw.
const NLL_POINTS: usize = 1000;

/// The NLL bound of a fresh held-out draw of the run's dataset, with the run's variance.
fn held_out_nll(run: &PipelineRun, device: &Device) -> Result<f64> {
    let seeds = run.config.seeds();
    let points = Dataset2d::generate(run.data.kind, NLL_POINTS, seeds.eval);
    let bound = nll_bound(
        &run.model,
        &run.schedule,
        &points.points,
        // a learned variance's own, otherwise the fixed one the run sampled with
        (!run.model.learns_variance()).then_some(run.config.sampling.variance),
        seeds.sample,
        device,
    )?;
    Ok(bound.bits_per_dim)
}

/// One row per variant: the Fréchet classifier distance (mean ± sd over the seeds) and its
/// multiple of the floor, the class accuracy, the final loss and wall times.
fn image_table(variants: &[VariantResult<ImageRunSummary>]) -> Table {
    let seeds = variants.first().map_or(0, |v| v.runs.len());
    let pm = |(mean, sd): (f64, f64), digits: usize| {
        if seeds > 1 {
            format!("{mean:.digits$} ± {sd:.digits$}")
        } else {
            format!("{mean:.digits$}")
        }
    };
    let mut table = Table::new([
        "variant",
        "Fréchet classifier distance",
        "FCD / floor",
        "class accuracy",
        "final loss",
        "train s",
        "sample s",
    ]);
    for v in variants {
        let fcd = v.mean_sd(|r| r.trained.fcd);
        let floor = v.mean_sd(|r| r.floor.fcd).0;
        let accuracy = if v.runs.iter().all(|r| r.trained.class_accuracy.is_some()) {
            let (mean, sd) = v.mean_sd(|r| 100.0 * r.trained.class_accuracy.unwrap_or(f64::NAN));
            if seeds > 1 {
                format!("{mean:.1} ± {sd:.1} %")
            } else {
                format!("{mean:.1} %")
            }
        } else {
            "-".to_string()
        };
        table.push([
            v.label.clone(),
            pm(fcd, 2),
            format!("{:.1}", fcd.0 / floor),
            accuracy,
            pm(v.mean_sd(|r| f64::from(r.final_loss)), 4),
            if v.runs.iter().all(|r| r.shared_training) {
                "(shared)".to_string()
            } else {
                pm(v.mean_sd(|r| r.train_seconds), 1)
            },
            pm(v.mean_sd(|r| r.sample_seconds), 2),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_of_every_grid_is_a_valid_change_of_the_quick_and_default_configs() {
        for base in [ExperimentConfig::quick(), ExperimentConfig::default()] {
            for &name in ExperimentName::ALL {
                let variants = name.variants();
                assert!(variants.len() >= 3, "{name}");
                let mut labels: Vec<&str> = variants.iter().map(|v| v.label.as_str()).collect();
                labels.sort_unstable();
                labels.dedup();
                assert_eq!(labels.len(), variants.len(), "{name}: duplicate labels");
                let mut configs = Vec::new();
                for v in &variants {
                    let mut config = base.clone();
                    (v.edit)(&mut config);
                    config
                        .validate()
                        .unwrap_or_else(|e| panic!("{name}/{}: {e}", v.label));
                    configs.push(config);
                }
                // Each variant changes something: no two run the same config.
                for i in 0..configs.len() {
                    for j in i + 1..configs.len() {
                        assert_ne!(configs[i], configs[j], "{name}: {i} and {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn mean_and_sample_sd_over_seeds() {
        let run = |ed: f64| RunSummary {
            seed: 0,
            energy_distance: ed,
            energy_distance_floor: 1.0,
            mmd: 0.0,
            mmd_floor: 1.0,
            nn1_accuracy: 0.5,
            nn1_accuracy_floor: 0.5,
            precision: 1.0,
            recall: 1.0,
            final_loss: 0.0,
            train_seconds: 0.0,
            shared_training: false,
            sample_seconds: 0.0,
            nll_bits_per_dim: None,
            classes: None,
        };
        let v = VariantResult {
            label: "x".into(),
            runs: vec![run(1.0), run(2.0), run(3.0)],
        };
        let (mean, sd) = v.mean_sd(|r| r.energy_distance);
        assert_eq!((mean, sd), (2.0, 1.0));

        // The floor multiple is the mean over the mean floor, not the mean of noisy ratios.
        let mut a = run(2.0);
        let mut b = run(2.0);
        a.energy_distance_floor = 1.0;
        b.energy_distance_floor = 3.0;
        let report = ExperimentReport {
            name: ExperimentName::Targets,
            title: "t".into(),
            base: ExperimentConfig::quick(),
            variants: GridResults::Points(vec![VariantResult {
                label: "x".into(),
                runs: vec![a, b],
            }]),
            backend: "flex".into(),
            comparison: None,
            image_chart: None,
        };
        let table = report.table();
        let column = |name: &str| table.headers.iter().position(|h| h == name).unwrap();
        assert_eq!(
            table.rows[0][column("energy distance")],
            "2.00000 ± 0.00000"
        );
        assert_eq!(table.rows[0][column("ED / floor")], "1.0");
    }
}
