//! The experiment grids on images: the same variants as on points, measured by the classifier
//! (Fréchet classifier distance and class accuracy, each beside the held-out floor), with one
//! row of samples per variant as the chart.

use burn::prelude::Device;

use super::grid::{
    ExperimentName, ExperimentReport, GridResults, ImageRunSummary, SEED_STRIDE, Variant,
    VariantResult,
};
use super::same_training;
use crate::config::ExperimentConfig;
use crate::error::Result;
use crate::pipeline::images::{ImageRun, classifier_path, run_images};
use crate::plot::{ImageGrid, tile_from_unit};
use crate::train::Silent;

/// Samples per variant in the chart: one per class of the digits.
const SHOWN: usize = 10;

/// [`super::run_experiment`] on images. Variants that differ only in how they sample share one
/// trained model per seed; the classifier is cached in the system's temporary directory
/// (its file name says the dataset and a hash of what it depends on).
pub(super) fn run_image_experiment(
    name: ExperimentName,
    variants: &[Variant],
    base: &ExperimentConfig,
    seeds: usize,
    device: &Device,
    progress: &mut dyn FnMut(&str, u64, &str),
) -> Result<ExperimentReport> {
    let cache_dir = std::env::temp_dir().join("ddpm-core-classifiers");
    std::fs::create_dir_all(&cache_dir).map_err(|e| crate::error::DdpmError::io(&cache_dir, e))?;
    let mut results: Vec<VariantResult<ImageRunSummary>> = variants
        .iter()
        .map(|v| VariantResult {
            label: v.label.clone(),
            runs: Vec::new(),
        })
        .collect();
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    let mut shape = None;
    for k in 0..seeds as u64 {
        let mut seeded_base = base.clone();
        seeded_base.seed = base.seed.wrapping_add(k * SEED_STRIDE);
        let mut trained: Vec<ImageRun> = Vec::new();
        for (v, result) in variants.iter().zip(&mut results) {
            let mut config = seeded_base.clone();
            (v.edit)(&mut config);
            let earlier = trained
                .iter()
                .position(|run| same_training(&run.config, &config));
            let (summary, samples) = match earlier {
                Some(i) => {
                    let run = &trained[i];
                    let again = run.score_sampling(&config.sampling, device)?;
                    let summary = ImageRunSummary {
                        seed: config.seed,
                        trained: again.score,
                        floor: run.report.floor,
                        final_loss: final_loss(run),
                        train_seconds: run.report.train_seconds,
                        shared_training: true,
                        sample_seconds: again.seconds,
                    };
                    (summary, again.samples)
                }
                None => {
                    let cache = classifier_path(&config, &cache_dir);
                    let run = run_images(
                        &config,
                        device,
                        &crate::backend::Backend::label(device),
                        &cache,
                        &mut Silent,
                    )?;
                    let summary = ImageRunSummary {
                        seed: config.seed,
                        trained: run.report.trained,
                        floor: run.report.floor,
                        final_loss: final_loss(&run),
                        train_seconds: run.report.train_seconds,
                        shared_training: false,
                        sample_seconds: run.report.sample_seconds,
                    };
                    let samples = run.output.samples.clone();
                    shape = Some(run.data.train.shape());
                    trained.push(run);
                    (summary, samples)
                }
            };
            let line = format!(
                "FCD {:.2} (floor {:.2}){}, train {:.1} s, sample {:.2} s",
                summary.trained.fcd,
                summary.floor.fcd,
                summary
                    .trained
                    .class_accuracy
                    .map(|a| format!(", class accuracy {:.1} %", 100.0 * a))
                    .unwrap_or_default(),
                summary.train_seconds,
                summary.sample_seconds
            );
            progress(&v.label, config.seed, &line);
            if k == 0 {
                rows.push(
                    samples
                        .iter()
                        .take(SHOWN)
                        .map(|s| tile_from_unit(s))
                        .collect(),
                );
                labels.push(format!("{}: FCD {:.1}", v.label, summary.trained.fcd));
            }
            result.runs.push(summary);
        }
    }
    let image_chart = shape.map(|shape| {
        let scale = (48 / shape.height.max(1)).clamp(2, 8) as u32;
        ImageGrid::new(
            format!(
                "{} on {}: the first samples of each variant",
                name.title(),
                base.data.dataset
            ),
            shape,
            rows,
            scale,
        )
        .with_row_labels(labels)
    });
    Ok(ExperimentReport {
        name,
        title: name.title().to_string(),
        base: base.clone(),
        variants: GridResults::Images(results),
        backend: crate::backend::Backend::label(device),
        comparison: None,
        image_chart,
    })
}

fn final_loss(run: &ImageRun) -> f32 {
    run.history.per_epoch.last().copied().unwrap_or(f32::NAN)
}
