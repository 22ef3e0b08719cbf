//! The tutorial pipeline on images: data -> U-Net -> training -> class-conditional sampling ->
//! classifier metrics and the NLL bound in bits/dim -> image figures, in one output directory.
//!
//! Everything but the network and the figures is the library the 2-D tutorial uses: the same
//! schedules, loss, training loop, EMA, DDPM/DDIM samplers and classifier-free guidance, since
//! images travel through them as rows of `channels * height * width` values.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use crate::classifier::{ImageClassifier, cached_classifier, frechet_distance};
use crate::config::ExperimentConfig;
use crate::data::images::ImageData;
use crate::data::{ImageDataset, ImageSet};
use crate::error::Result;
use crate::io;
use crate::loss::{Decoder, NllBound, nll_bound_of};
use crate::model::{Denoise, Network};
use crate::plot::{self, ImageAnimation, ImageGrid, LossCurve, Tile, tile_from_unit};
use crate::rng::NoiseSource;
use crate::sampling::{Guided, PosteriorVariance, SampleOutput, SamplingConfig, StepRule};
use crate::schedule::NoiseSchedule;
use crate::time::PaperTime;
use crate::train::{LossHistory, TrainObserver, load_model, save_network, train};

/// Real training images whose classifier features stand for the data in the Fréchet distance.
pub const REFERENCE_IMAGES: usize = 5000;

/// A trained model sampled again ([`ImageRun::score_sampling`]).
#[derive(Debug, Clone)]
pub struct Resampled {
    /// The classifier's numbers for the new samples.
    pub score: ClassifierScore,
    /// Seconds sampling took.
    pub seconds: f64,
    /// The samples, as rows in [-1, 1].
    pub samples: Vec<Vec<f32>>,
}

/// The classifier's numbers for one set of images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassifierScore {
    /// Fréchet classifier distance to the training images (the first [`REFERENCE_IMAGES`], of the
    /// class asked for when `sampling.class` names one).
    pub fcd: f64,
    /// Share classified as the class asked for (conditional samples; for real images, their
    /// labels).
    pub class_accuracy: Option<f64>,
}

/// What the image pipeline measured; written as `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageReport {
    /// Backend.
    pub backend: String,
    /// Dataset.
    pub dataset: ImageDataset,
    /// Training images.
    pub train_images: usize,
    /// Parameters of the U-Net.
    pub parameters: usize,
    /// The sampler used.
    pub sampler: String,
    /// The trained model's samples.
    pub trained: ClassifierScore,
    /// Held-out real images (of the class asked for, when `sampling.class` names one), as many
    /// as the samples allow: the best a model can score.
    pub floor: ClassifierScore,
    /// An untrained model's samples (same seed, same sampler): what no learning scores. Absent
    /// when a saved model is sampled again (`ddpm sample`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untrained: Option<ClassifierScore>,
    /// The NLL bound on held-out images, discretised decoder, fixed-small variance.
    pub nll: Option<NllBound>,
    /// Held-out images the bound was computed on.
    pub nll_images: usize,
    /// Seconds spent training the model.
    pub train_seconds: f64,
    /// Seconds per epoch.
    pub seconds_per_epoch: f64,
    /// Seconds spent sampling the trained model's images.
    pub sample_seconds: f64,
    /// Seconds spent on the classifier (0 when it came from the cache).
    pub classifier_seconds: f64,
}

/// A finished image run.
pub struct ImageRun {
    /// Its config.
    pub config: ExperimentConfig,
    /// The data.
    pub data: ImageData,
    /// The schedule.
    pub schedule: NoiseSchedule,
    /// The trained network.
    pub model: Network,
    /// Its losses.
    pub history: LossHistory,
    /// The generated images with the recorded states.
    pub output: SampleOutput<Vec<f32>>,
    /// The class asked for each sample (empty for an unconditional model).
    pub classes: Vec<usize>,
    /// What was measured.
    pub report: ImageReport,
    /// The classifier that measured it.
    pub classifier: ImageClassifier,
    /// Its features of the real reference images.
    real_features: Vec<Vec<f64>>,
}

/// Train, sample and measure. The classifier is read from `classifier_cache` when it holds
/// one, else trained and saved there.
pub fn run_images(
    config: &ExperimentConfig,
    device: &Device,
    backend: &str,
    classifier_cache: &Path,
    observer: &mut dyn TrainObserver,
) -> Result<ImageRun> {
    config.validate()?;
    let seeds = config.seeds();
    let data = config.data.load_images(seeds.data)?;
    let schedule = config.diffusion.init()?;
    let untrained = super::init_model(config, device)?;
    let judge = Judge::new(config, &data, classifier_cache, device)?;

    let started = Instant::now();
    let trained = train(
        untrained,
        &schedule,
        &data.train,
        &config.train,
        seeds.train,
        device,
        observer,
    )?;
    let train_seconds = started.elapsed().as_secs_f64();
    let stage = Stage {
        data,
        schedule,
        model: trained.model,
        history: trained.history,
        train_seconds,
    };
    sample_and_measure(config, stage, judge, device, backend, true)
}

/// Load a model saved by [`run_images_and_save`] (its architecture and schedule from `config`),
/// sample it with `config.sampling` and measure, without training and without the untrained
/// baseline. The classifier is read from `classifier_cache` or trained there.
pub fn run_images_from_model(
    config: &ExperimentConfig,
    model_path: &Path,
    device: &Device,
    backend: &str,
    classifier_cache: &Path,
) -> Result<ImageRun> {
    config.validate()?;
    let data = config.data.load_images(config.seeds().data)?;
    let shape = config.data.dataset.shape();
    let model = load_model(
        &config.model,
        shape,
        config.diffusion.timesteps,
        model_path,
        device,
    )?;
    let judge = Judge::new(config, &data, classifier_cache, device)?;
    let stage = Stage {
        data,
        schedule: config.diffusion.init()?,
        model,
        history: LossHistory::default(),
        train_seconds: 0.0,
    };
    sample_and_measure(config, stage, judge, device, backend, false)
}

/// What training hands to sampling.
struct Stage {
    data: ImageData,
    schedule: NoiseSchedule,
    model: Network,
    history: LossHistory,
    train_seconds: f64,
}

/// The classifier that measures the samples, with its features of the real images.
struct Judge {
    classifier: ImageClassifier,
    seconds: f64,
    real_features: Vec<Vec<f64>>,
}

impl Judge {
    fn new(
        config: &ExperimentConfig,
        data: &ImageData,
        cache: &Path,
        device: &Device,
    ) -> Result<Self> {
        let started = Instant::now();
        let (classifier, trained_now) = cached_classifier(
            cache,
            &data.all_train,
            &config.evaluation.classifier,
            config.seeds().classifier,
            device,
        )?;
        let seconds = if trained_now {
            started.elapsed().as_secs_f64()
        } else {
            0.0
        };
        // One class asked for: its samples are compared with the real images of that class.
        let real = match config.sampling.class {
            Some(class) => data.all_train.of_class(class),
            None => data.all_train.clone(),
        };
        let real_features =
            classifier.feature_rows(&rows_of(&real.take(REFERENCE_IMAGES)), device)?;
        Ok(Self {
            classifier,
            seconds,
            real_features,
        })
    }

    /// The Fréchet classifier distance of `images`, and how many are classified as `labels`.
    fn score(
        &self,
        images: &[Vec<f32>],
        labels: Option<&[usize]>,
        device: &Device,
    ) -> Result<ClassifierScore> {
        let features = self.classifier.feature_rows(images, device)?;
        Ok(ClassifierScore {
            fcd: frechet_distance(&features, &self.real_features)?,
            class_accuracy: match labels {
                Some(labels) => Some(self.classifier.accuracy(images, labels, device)?),
                None => None,
            },
        })
    }
}

fn sample_and_measure(
    config: &ExperimentConfig,
    stage: Stage,
    judge: Judge,
    device: &Device,
    backend: &str,
    untrained_baseline: bool,
) -> Result<ImageRun> {
    let seeds = config.seeds();
    let Stage {
        data,
        schedule,
        model,
        history,
        train_seconds,
    } = stage;
    let parameters = model.num_params();
    let classes = super::wanted_classes(config);
    let sampler = config.sampling.init(&schedule)?;
    let record = sampler.frame_times(config.sampling.trajectory_frames);
    let started = Instant::now();
    let output = sample_images(config, &schedule, &model, &classes, &record, device)?;
    let sample_seconds = started.elapsed().as_secs_f64();

    let n = config.sampling.n_samples;
    let asked = (!classes.is_empty()).then_some(classes.as_slice());
    let held_out = match config.sampling.class {
        Some(class) => data.held_out.of_class(class),
        None => data.held_out.clone(),
    }
    .take(n);
    let floor = judge.score(&rows_of(&held_out), Some(&held_out.labels), device)?;
    let trained_score = judge.score(&output.samples, asked, device)?;
    let untrained = if untrained_baseline {
        let baseline = super::init_model(config, device)?;
        let out = sample_images(config, &schedule, &baseline, &classes, &[], device)?;
        Some(judge.score(&out.samples, asked, device)?)
    } else {
        None
    };

    let nll_images = config.evaluation.nll_images;
    let nll = if nll_images > 0 {
        let images = data.held_out.take(nll_images);
        let all: Vec<usize> = (0..images.len()).collect();
        Some(nll_bound_of(
            &model,
            &schedule,
            images.batch(&all, device),
            Decoder::Discretized8Bit,
            Some(PosteriorVariance::FixedSmall),
            seeds.nll,
        )?)
    } else {
        None
    };

    let dataset = config
        .data
        .dataset
        .images()
        .expect("validated: an image run's data is images");
    let report = ImageReport {
        backend: backend.to_string(),
        dataset,
        train_images: data.train.len(),
        parameters,
        sampler: crate::pipeline::sampler_description(&config.sampling, config.diffusion.timesteps),
        trained: trained_score,
        floor,
        untrained,
        nll,
        nll_images,
        train_seconds,
        seconds_per_epoch: train_seconds / config.train.epochs.max(1) as f64,
        sample_seconds,
        classifier_seconds: judge.seconds,
    };
    Ok(ImageRun {
        config: config.clone(),
        data,
        schedule,
        model,
        history,
        output,
        classes,
        report,
        classifier: judge.classifier,
        real_features: judge.real_features,
    })
}

/// Sample `classes.len()` images (or `n_samples` from an unconditional model) with the
/// configured sampler, guided when the model is conditional, recording the states at
/// `record`. `schedule` is the one `config.diffusion` builds.
pub fn sample_images<M: Denoise>(
    config: &ExperimentConfig,
    schedule: &NoiseSchedule,
    model: &M,
    classes: &[usize],
    record: &[PaperTime],
    device: &Device,
) -> Result<SampleOutput<Vec<f32>>> {
    let sampler = config.sampling.init(schedule)?;
    let mut rng = NoiseSource::new(config.seeds().sample);
    if classes.is_empty() {
        sampler.sample_rows(model, config.sampling.n_samples, &mut rng, record, device)
    } else {
        let guided = Guided::new(model, classes, config.sampling.guidance_scale, device)?;
        sampler.sample_rows(&guided, classes.len(), &mut rng, record, device)
    }
}

/// Every image of `set` as a row in [-1, 1].
pub fn rows_of(set: &ImageSet) -> Vec<Vec<f32>> {
    let size = set.image_size();
    set.to_unit_range()
        .chunks_exact(size.max(1))
        .map(<[f32]>::to_vec)
        .collect()
}

/// The file names the image pipeline writes.
pub mod files {
    pub use crate::pipeline::files::{
        CONFIG_JSON, FORWARD_PROCESS, METRICS_JSON, MODEL, REAL_VS_GENERATED, REVERSE_PROCESS,
        SAMPLING_ANIMATION, TRAINING_CURVE,
    };
}

/// Columns of real and of generated images per class in `real_vs_generated.png`.
pub const PER_CLASS: usize = 8;

impl ImageRun {
    /// Sample the trained model again with `sampling` (the classes it asks for, the run's
    /// seed) and score the images with the run's classifier.
    pub fn score_sampling(&self, sampling: &SamplingConfig, device: &Device) -> Result<Resampled> {
        let config = ExperimentConfig {
            sampling: sampling.clone(),
            ..self.config.clone()
        };
        config.validate()?;
        let classes = super::wanted_classes(&config);
        let started = Instant::now();
        let out = sample_images(&config, &self.schedule, &self.model, &classes, &[], device)?;
        let seconds = started.elapsed().as_secs_f64();
        let features = self.classifier.feature_rows(&out.samples, device)?;
        let score = ClassifierScore {
            fcd: frechet_distance(&features, &self.real_features)?,
            class_accuracy: if classes.is_empty() {
                None
            } else {
                Some(self.classifier.accuracy(&out.samples, &classes, device)?)
            },
        };
        Ok(Resampled {
            score,
            seconds,
            samples: out.samples,
        })
    }

    fn names(&self) -> Vec<String> {
        self.dataset().class_names()
    }

    fn dataset(&self) -> ImageDataset {
        self.report.dataset
    }

    /// The classes shown as rows: those asked for, in order (one row, unlabelled, for an
    /// unconditional model).
    fn shown_classes(&self) -> Vec<Option<usize>> {
        if self.classes.is_empty() {
            return vec![None];
        }
        let mut classes: Vec<usize> = self.classes.clone();
        classes.sort_unstable();
        classes.dedup();
        classes.into_iter().map(Some).collect()
    }

    /// Screen pixels per image pixel: tiles about 48 pixels high (8x8 digits drawn 6 times as
    /// large), so that a grid of 16 columns fits a notebook's width.
    fn scale(&self) -> u32 {
        (48 / self.data.train.height.max(1)).clamp(2, 8) as u32
    }

    /// `real_vs_generated.png`: per class, real training images beside generated ones.
    pub fn real_vs_generated(&self) -> ImageGrid {
        let names = self.names();
        let shown = self.shown_classes();
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for &class in &shown {
            let real: Vec<Tile> = (0..self.data.train.len())
                .filter(|&i| class.is_none_or(|c| self.data.train.labels[i] == c))
                .take(PER_CLASS)
                .map(|i| self.data.train.image(i).to_vec())
                .collect();
            let generated: Vec<Tile> = match class {
                None => self
                    .output
                    .samples
                    .iter()
                    .take(PER_CLASS)
                    .map(|s| tile_from_unit(s))
                    .collect(),
                Some(class) => self
                    .output
                    .samples
                    .iter()
                    .zip(&self.classes)
                    .filter(|(_, c)| **c == class)
                    .take(PER_CLASS)
                    .map(|(s, _)| tile_from_unit(s))
                    .collect(),
            };
            rows.push(real.into_iter().chain(generated).collect());
            labels.push(class.map_or(String::new(), |c| names[c].clone()));
        }
        let k = shown.len();
        let mut columns = vec![String::new(); 2 * PER_CLASS];
        columns[0] = "real".into();
        columns[PER_CLASS] = format!("generated ({})", self.report.sampler);
        ImageGrid::new(
            format!(
                "{}: real (left) and generated (right), {}",
                self.config.data.dataset,
                match (k, shown[0]) {
                    (1, Some(c)) => format!("class {}", names[c]),
                    (1, None) => "unconditional".to_string(),
                    _ => "one row per class".to_string(),
                }
            ),
            self.data.train.shape(),
            rows,
            self.scale(),
        )
        .with_row_labels(labels)
        .with_column_labels(columns)
        .with_split_after(PER_CLASS)
    }

    /// `forward_process.png`: one training image per class, noised in closed form at the
    /// times the reverse figure shows.
    pub fn forward_process(&self, device: &Device) -> Result<ImageGrid> {
        let times = self.shown_times();
        let mut picks = Vec::new();
        for class in 0..self.data.train.num_classes {
            if let Some(i) = self.data.train.labels.iter().position(|&l| l == class) {
                picks.push(i);
            }
        }
        let x0 = self.data.train.batch(&picks, device);
        let mut rng = NoiseSource::new(self.config.seeds().figures);
        let noise = rng.normal(x0.dims(), device);
        let mut columns: Vec<Vec<Vec<f32>>> = Vec::new();
        for &t in &times {
            let x_t = match t.index() {
                None => x0.clone(),
                Some(i) => {
                    crate::diffusion::q_sample(&self.schedule, x0.clone(), &[i], noise.clone())
                }
            };
            columns.push(crate::points::to_rows(x_t)?);
        }
        let rows = (0..picks.len())
            .map(|r| columns.iter().map(|c| tile_from_unit(&c[r])).collect())
            .collect();
        Ok(ImageGrid::new(
            "Forward process q(x_t | x_0): images dissolve into noise",
            self.data.train.shape(),
            rows,
            self.scale(),
        )
        .with_column_labels(times.iter().map(|t| format!("t={t}")).collect()))
    }

    /// The paper times shown in the process figures: those recorded while sampling, noisiest
    /// last for the forward figure.
    fn shown_times(&self) -> Vec<PaperTime> {
        let mut times: Vec<PaperTime> = self.output.trajectory.iter().map(|f| f.t).collect();
        times.sort_unstable();
        times
    }

    /// `reverse_process.png`: one sample per class (the first ten) from x_T to x_0.
    pub fn reverse_process(&self) -> ImageGrid {
        let shown = self.output.samples.len().min(10);
        let rows = (0..shown)
            .map(|r| {
                self.output
                    .trajectory
                    .iter()
                    .map(|frame| tile_from_unit(&frame.points[r]))
                    .collect()
            })
            .collect();
        let names = self.names();
        let labels = if !self.classes.is_empty() {
            self.classes[..shown]
                .iter()
                .map(|&c| names[c].clone())
                .collect()
        } else {
            Vec::new()
        };
        ImageGrid::new(
            format!(
                "Reverse process ({}): noise becomes images",
                self.report.sampler
            ),
            self.data.train.shape(),
            rows,
            self.scale(),
        )
        .with_row_labels(labels)
        .with_column_labels(
            self.output
                .trajectory
                .iter()
                .map(|f| format!("t={}", f.t))
                .collect(),
        )
    }

    /// `sampling_animation.gif`: the generated images (ten per class at most, a row per
    /// class) at each recorded step.
    pub fn sampling_animation(&self) -> ImageAnimation {
        let per_row = 10;
        let shown = self.shown_classes();
        let rows = if shown.len() == 1 { 10 } else { shown.len() };
        let mut picks: Vec<Vec<usize>> = vec![Vec::new(); rows];
        for i in 0..self.output.samples.len() {
            let row = match self.classes.get(i) {
                Some(c) if shown.len() > 1 => {
                    shown.iter().position(|s| *s == Some(*c)).unwrap_or(0)
                }
                _ => (i / per_row).min(rows - 1),
            };
            if picks[row].len() < per_row {
                picks[row].push(i);
            }
        }
        picks.retain(|row| !row.is_empty());
        let frames = self
            .output
            .trajectory
            .iter()
            .map(|frame| {
                let rows = picks
                    .iter()
                    .map(|row| {
                        row.iter()
                            .map(|&i| tile_from_unit(&frame.points[i]))
                            .collect()
                    })
                    .collect();
                ImageGrid::new(
                    format!("Sampling, t = {}", frame.t),
                    self.data.train.shape(),
                    rows,
                    self.scale(),
                )
            })
            .collect();
        ImageAnimation { frames }
    }

    /// `training_curve.png`.
    pub fn training_curve(&self) -> LossCurve {
        LossCurve {
            per_step: self.history.per_step.clone(),
            per_epoch: self.history.per_epoch.clone(),
            title: format!(
                "Training loss: U-Net on {} ({} epochs)",
                self.config.data.dataset, self.config.train.epochs
            ),
        }
    }

    /// The metrics as a table: trained, floor and untrained.
    pub fn quality_table(&self) -> crate::display::Table {
        let mut table = crate::display::Table::new([
            "images",
            "Fréchet classifier distance",
            "classified as the class asked for",
        ]);
        let pct = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{:.1} %", 100.0 * a));
        let r = &self.report;
        let rows = [
            ("generated (trained model)", Some(&r.trained)),
            ("real, held out (floor)", Some(&r.floor)),
            ("generated (untrained model)", r.untrained.as_ref()),
        ];
        for (label, s) in rows.into_iter().filter_map(|(l, s)| Some((l, s?))) {
            table.push([
                label.to_string(),
                format!("{:.2}", s.fcd),
                pct(s.class_accuracy),
            ]);
        }
        table
    }
}

/// The classifier cache file for `config` in `dir`: the name says the dataset and a hash of
/// what the classifier depends on (its config, the held-out split, the seed).
pub fn classifier_path(config: &ExperimentConfig, dir: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&config.evaluation.classifier)
        .expect("serialises")
        .hash(&mut hasher);
    (config.data.held_out, config.seed).hash(&mut hasher);
    dir.join(format!(
        "classifier-{}-{:016x}.bpk",
        config.data.dataset,
        hasher.finish()
    ))
}

/// Run the image pipeline and write its figures and results into `out_dir` (staged: a failed
/// run leaves the last good outputs as they were). The classifier is cached in `out_dir`.
pub fn run_images_and_save(
    config: &ExperimentConfig,
    device: &Device,
    backend: &str,
    out_dir: &Path,
    observer: &mut dyn TrainObserver,
) -> Result<ImageRun> {
    config.validate()?;
    let staged = io::StagedDir::create(out_dir)?;
    let cache = classifier_path(config, out_dir);
    let run = run_images(config, device, backend, &cache, observer)?;
    let out = staged.path();
    io::write_atomic(
        &out.join(files::CONFIG_JSON),
        run.config.to_json().as_bytes(),
    )?;
    let metrics = serde_json::to_string_pretty(&run.report).expect("report serialises");
    io::write_atomic(&out.join(files::METRICS_JSON), metrics.as_bytes())?;
    save_network(&run.model, &out.join(files::MODEL))?;
    io::write_atomic(
        &out.join(files::FORWARD_PROCESS),
        run.forward_process(device)?.to_png()?.bytes(),
    )?;
    plot::save(&run.training_curve(), &out.join(files::TRAINING_CURVE))?;
    write_sample_figures(&run, out)?;
    staged.commit()?;
    Ok(run)
}

/// `ddpm sample` on an image model: [`run_images_from_model`], then write the config, the
/// metrics and the figures that need only samples into `out_dir` (staged). The classifier is
/// cached beside the model.
pub fn sample_images_and_save(
    config: &ExperimentConfig,
    model_path: &Path,
    device: &Device,
    backend: &str,
    out_dir: &Path,
) -> Result<ImageRun> {
    config.validate()?;
    let staged = io::StagedDir::create(out_dir)?;
    let model_dir = model_path.parent().unwrap_or_else(|| Path::new("."));
    let cache = classifier_path(config, model_dir);
    let run = run_images_from_model(config, model_path, device, backend, &cache)?;
    let out = staged.path();
    io::write_atomic(
        &out.join(files::CONFIG_JSON),
        run.config.to_json().as_bytes(),
    )?;
    let metrics = serde_json::to_string_pretty(&run.report).expect("report serialises");
    io::write_atomic(&out.join(files::METRICS_JSON), metrics.as_bytes())?;
    write_sample_figures(&run, out)?;
    staged.commit()?;
    Ok(run)
}

/// The figures that need only the samples and their trajectory.
fn write_sample_figures(run: &ImageRun, out: &Path) -> Result<()> {
    io::write_atomic(
        &out.join(files::REAL_VS_GENERATED),
        run.real_vs_generated().to_png()?.bytes(),
    )?;
    if !run.output.trajectory.is_empty() {
        io::write_atomic(
            &out.join(files::REVERSE_PROCESS),
            run.reverse_process().to_png()?.bytes(),
        )?;
        plot::save_gif(
            &run.sampling_animation(),
            &out.join(files::SAMPLING_ANIMATION),
            crate::pipeline::ANIMATION_FRAME_MS,
        )?;
    }
    Ok(())
}
