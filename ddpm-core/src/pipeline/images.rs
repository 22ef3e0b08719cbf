//! The tutorial pipeline on images: data -> U-Net -> training -> class-conditional sampling ->
//! classifier metrics and the NLL bound in bits/dim -> image figures, in one output directory.
//!
//! Everything but the network and the figures is the library the 2-D tutorial uses: the same
//! schedules, loss, training loop, EMA, DDPM/DDIM samplers and classifier-free guidance, since
//! images travel through them as rows of `channels * height * width` values.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::choice::choice_enum;
use crate::classifier::{ClassifierConfig, ImageClassifier, cached_classifier, frechet_distance};
use crate::data::ImageSet;
use crate::data::images::{Split, load_cifar10, load_digits, load_fashion_mnist, load_mnist};
use crate::loss::{Decoder, NllBound, nll_bound_of};
use crate::model::{UNet, UNetConfig};
use crate::plot::{self, ImageAnimation, ImageGrid, LossCurve, Tile, tile_from_unit};
use crate::rng::{NoiseSource, seeded};
use crate::sampling::{Guided, PosteriorVariance, SampleOutput, SamplerKind, SamplingConfig};
use crate::schedule::{NoiseSchedule, ScheduleConfig};
use crate::train::{LossHistory, TrainConfig, TrainObserver, save_model, train};
use crate::{DdpmError, Result, io};

choice_enum! {
    /// An image dataset.
    pub enum ImageDataset ("image dataset") {
        /// 8x8 handwritten digits, shipped with the crate (1797 images).
        Digits = "digits",
        /// Fashion-MNIST 28x28 (Debian's `dataset-fashion-mnist`, or a directory).
        FashionMnist = "fashion_mnist",
        /// MNIST 28x28, from a directory of its IDX files.
        Mnist = "mnist",
        /// CIFAR-10 32x32 RGB, from a directory of its binary batches.
        Cifar10 = "cifar10",
    }
}

impl ImageDataset {
    /// The names of the classes, in label order.
    pub fn class_names(self) -> Vec<String> {
        let names: &[&str] = match self {
            ImageDataset::Digits | ImageDataset::Mnist => {
                &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
            }
            ImageDataset::FashionMnist => &[
                "T-shirt",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
            ImageDataset::Cifar10 => &[
                "airplane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
            ],
        };
        names.iter().map(|s| s.to_string()).collect()
    }
}

/// Which images, and how many.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageDataConfig {
    /// The dataset.
    pub dataset: ImageDataset,
    /// Where its files are (MNIST and CIFAR-10: required; Fashion-MNIST: optional, see
    /// [`load_fashion_mnist`]; digits: not used).
    pub data_dir: Option<PathBuf>,
    /// Train on the first this many training images (0: all).
    pub max_train: usize,
    /// Held-out images for the metric's floor and the NLL bound: the first of the test split,
    /// or, for the digits (which have none), a seeded random share set aside from training.
    pub held_out: usize,
}

impl Default for ImageDataConfig {
    fn default() -> Self {
        Self {
            dataset: ImageDataset::Digits,
            data_dir: None,
            max_train: 0,
            held_out: 300,
        }
    }
}

/// Training images and held-out ones.
#[derive(Debug, Clone)]
pub struct ImageData {
    /// What the diffusion model trains on (the first `max_train` of the training split).
    pub train: ImageSet,
    /// The whole training split: what the classifier trains on, and (its first
    /// [`REFERENCE_IMAGES`]) the real images the Fréchet distance compares with.
    pub all_train: ImageSet,
    /// Held out from both.
    pub held_out: ImageSet,
}

/// Real training images whose classifier features stand for the data in the Fréchet distance.
pub const REFERENCE_IMAGES: usize = 5000;

impl ImageDataConfig {
    /// Load the images (`seed` splits the digits).
    pub fn load(&self, seed: u64) -> Result<ImageData> {
        let dir = || {
            self.data_dir.clone().ok_or_else(|| {
                DdpmError::invalid(
                    "data.data_dir",
                    "none",
                    format!(
                        "{} is not shipped with ddpm-core: name the directory of its files \
                         (--data-dir DIR)",
                        self.dataset
                    ),
                )
            })
        };
        let (train, test) = match self.dataset {
            ImageDataset::Digits => load_digits()?.split(self.held_out, seed)?,
            ImageDataset::FashionMnist => {
                let dir = self.data_dir.as_deref();
                (
                    load_fashion_mnist(dir, Split::Train)?,
                    load_fashion_mnist(dir, Split::Test)?,
                )
            }
            ImageDataset::Mnist => {
                let dir = dir()?;
                (
                    load_mnist(&dir, Split::Train)?,
                    load_mnist(&dir, Split::Test)?,
                )
            }
            ImageDataset::Cifar10 => {
                let dir = dir()?;
                (
                    load_cifar10(&dir, Split::Train)?,
                    load_cifar10(&dir, Split::Test)?,
                )
            }
        };
        let all_train = train;
        let train = if self.max_train > 0 {
            all_train.take(self.max_train)
        } else {
            all_train.clone()
        };
        if test.len() < self.held_out {
            return Err(DdpmError::invalid(
                "data.held_out",
                self.held_out,
                format!("must be at most the {} held-out images", test.len()),
            ));
        }
        Ok(ImageData {
            train,
            all_train,
            held_out: test.take(self.held_out),
        })
    }
}

/// One image experiment: data, diffusion, U-Net, training, sampling, and the classifier that
/// measures the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageExperimentConfig {
    /// Master seed of every random draw.
    pub seed: u64,
    /// The images.
    pub data: ImageDataConfig,
    /// The noise schedule.
    pub diffusion: ScheduleConfig,
    /// The U-Net.
    pub model: UNetConfig,
    /// Training.
    pub train: TrainConfig,
    /// Sampling (`n_samples` images, in equal shares per class for a conditional model).
    pub sampling: SamplingConfig,
    /// The classifier behind the quality metric.
    pub classifier: ClassifierConfig,
    /// Held-out images the NLL bound is computed on (0 skips it: it costs T forward passes).
    pub nll_images: usize,
}

impl Default for ImageExperimentConfig {
    fn default() -> Self {
        Self::digits()
    }
}

impl ImageExperimentConfig {
    /// 8x8 digits, class-conditional: T = 1000, a [32, 64] U-Net, 40 epochs (about 2.5 minutes
    /// on two CPU cores), 300 samples with DDIM in 50 steps at guidance w = 1.
    pub fn digits() -> Self {
        Self {
            seed: 42,
            data: ImageDataConfig::default(),
            diffusion: ScheduleConfig::default(),
            model: UNetConfig {
                channels: vec![32, 64],
                embedding_size: 64,
                num_classes: 10,
                ..UNetConfig::default()
            },
            train: TrainConfig {
                epochs: 40,
                batch_size: 128,
                learning_rate: 2e-3,
                // 480 steps in all: an average over the last ~100 (0.995's ~200 lags behind)
                ema_decay: 0.99,
                ..TrainConfig::default()
            },
            sampling: SamplingConfig {
                n_samples: 300,
                method: SamplerKind::Ddim,
                steps: 50,
                clip_x0: 1.0,
                guidance_scale: 1.0,
                trajectory_frames: 12,
                ..SamplingConfig::default()
            },
            classifier: ClassifierConfig {
                epochs: 20,
                ..ClassifierConfig::default()
            },
            nll_images: 100,
        }
    }

    /// [`Self::digits`] on a notebook's (and CI's) budget, about 1.5 minutes on two CPU cores:
    /// 20 epochs (240 steps, so the EMA averages the last ~50 rather than ~100: a longer
    /// average lags behind), 200 samples by DDIM in 25 steps, no NLL bound.
    pub fn digits_quick() -> Self {
        let mut config = Self::digits();
        config.train.epochs = 20;
        config.train.ema_decay = 0.98;
        config.data.held_out = 200;
        config.sampling.n_samples = 200;
        config.sampling.steps = 25;
        config.sampling.trajectory_frames = 8;
        config.nll_images = 0;
        config
    }

    /// Fashion-MNIST 28x28: a [32, 64, 64] U-Net (28 -> 14 -> 7) on 60000 images.
    pub fn fashion_mnist() -> Self {
        let mut config = Self::digits();
        config.data = ImageDataConfig {
            dataset: ImageDataset::FashionMnist,
            held_out: 1000,
            ..ImageDataConfig::default()
        };
        config.model.channels = vec![32, 64, 64];
        config.model.embedding_size = 128;
        config.train.epochs = 5;
        config.train.learning_rate = 1e-3;
        config.sampling.n_samples = 1000;
        config.classifier.epochs = 3;
        // T forward passes per image: 20 images cost about 80 s on two CPU cores
        config.nll_images = 20;
        config
    }

    /// The defaults for `dataset`: MNIST as Fashion-MNIST; CIFAR-10 adds width and attention.
    pub fn for_dataset(dataset: ImageDataset) -> Self {
        match dataset {
            ImageDataset::Digits => Self::digits(),
            ImageDataset::FashionMnist => Self::fashion_mnist(),
            ImageDataset::Mnist => {
                let mut config = Self::fashion_mnist();
                config.data.dataset = ImageDataset::Mnist;
                config
            }
            ImageDataset::Cifar10 => {
                let mut config = Self::fashion_mnist();
                config.data.dataset = ImageDataset::Cifar10;
                config.model.channels = vec![64, 128, 128];
                config.model.attention = true;
                config.model.dropout = 0.1;
                config.train.epochs = 20;
                config
            }
        }
    }

    /// Check every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<()> {
        self.diffusion.validate("diffusion.")?;
        self.model.validate("model.")?;
        self.train.validate("train.")?;
        self.sampling.validate("sampling.")?;
        self.sampling
            .validate_for("sampling.", self.diffusion.timesteps)?;
        self.classifier.validate("classifier.")?;
        if self.data.held_out < 2 {
            return Err(DdpmError::invalid(
                "data.held_out",
                self.data.held_out,
                "must be at least 2: the metric's floor fits a Gaussian to them",
            ));
        }
        if self.sampling.n_samples < 2 {
            return Err(DdpmError::invalid(
                "sampling.n_samples",
                self.sampling.n_samples,
                "must be at least 2 for the Fréchet distance",
            ));
        }
        if self.nll_images > self.data.held_out {
            return Err(DdpmError::invalid(
                "nll_images",
                self.nll_images,
                format!("must be at most data.held_out ({})", self.data.held_out),
            ));
        }
        if self.model.num_classes != 0 && self.model.num_classes != 10 {
            return Err(DdpmError::invalid(
                "model.num_classes",
                self.model.num_classes,
                "must be 0 (unconditional) or 10, the classes of every image dataset here",
            ));
        }
        if self.model.num_classes == 0 && self.sampling.guidance_scale != 1.0 {
            return Err(DdpmError::invalid(
                "sampling.guidance_scale",
                self.sampling.guidance_scale,
                "needs a conditional model (model.num_classes = 10); leave it at 1",
            ));
        }
        Ok(())
    }

    /// The JSON form, saved beside the results.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises to JSON")
    }
}

/// The classifier's numbers for one set of images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassifierScore {
    /// Fréchet classifier distance to the training images (the first [`REFERENCE_IMAGES`]).
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
    /// Held-out real images, as many as the samples allow: the best a model can score.
    pub floor: ClassifierScore,
    /// An untrained model's samples (same seed, same sampler): what no learning scores.
    pub untrained: ClassifierScore,
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
    pub config: ImageExperimentConfig,
    /// The data.
    pub data: ImageData,
    /// The schedule.
    pub schedule: NoiseSchedule,
    /// The trained network.
    pub model: UNet,
    /// Its losses.
    pub history: LossHistory,
    /// The generated images with the recorded states.
    pub output: SampleOutput<Vec<f32>>,
    /// The class asked for each sample (all 0 for an unconditional model).
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
    config: &ImageExperimentConfig,
    device: &Device,
    backend: &str,
    classifier_cache: &Path,
    observer: &mut dyn TrainObserver,
) -> Result<ImageRun> {
    config.validate()?;
    let seed = config.seed;
    let data = config.data.load(seed)?;
    let shape = data.train.shape();
    let schedule = config.diffusion.init()?;
    let untrained = init_model(config, shape, device, seed)?;
    let parameters = untrained.num_params();

    let started = Instant::now();
    let (classifier, trained_now) = cached_classifier(
        classifier_cache,
        &data.all_train,
        &config.classifier,
        seed.wrapping_add(5),
        device,
    )?;
    let classifier_seconds = if trained_now {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    };

    let started = Instant::now();
    let trained = train(
        untrained,
        &schedule,
        &data.train,
        &config.train,
        seed.wrapping_add(2),
        device,
        observer,
    )?;
    let train_seconds = started.elapsed().as_secs_f64();

    let n = config.sampling.n_samples;
    let conditional = config.model.num_classes > 0;
    let classes: Vec<usize> = (0..n)
        .map(|i| if conditional { i % 10 } else { 0 })
        .collect();
    let sampler = config.sampling.init(&schedule)?;
    let record = sampler.frame_times(config.sampling.trajectory_frames);
    let started = Instant::now();
    let output = sample_images(config, &schedule, &trained.model, &classes, &record, device)?;
    let sample_seconds = started.elapsed().as_secs_f64();
    let baseline = init_model(config, shape, device, seed)?;
    let untrained_output = sample_images(config, &schedule, &baseline, &classes, &[], device)?;

    let real = rows_of(&data.all_train.take(REFERENCE_IMAGES));
    let real_features = classifier.feature_rows(&real, device)?;
    let score = |images: &[Vec<f32>], labels: Option<&[usize]>| -> Result<ClassifierScore> {
        let features = classifier.feature_rows(images, device)?;
        Ok(ClassifierScore {
            fcd: frechet_distance(&features, &real_features)?,
            class_accuracy: match labels {
                Some(labels) => Some(classifier.accuracy(images, labels, device)?),
                None => None,
            },
        })
    };
    let asked = conditional.then_some(classes.as_slice());
    let held_out = data.held_out.take(n);
    let floor = score(&rows_of(&held_out), Some(&held_out.labels))?;
    let trained_score = score(&output.samples, asked)?;
    let untrained_score = score(&untrained_output.samples, asked)?;

    let nll = if config.nll_images > 0 {
        let images = data.held_out.take(config.nll_images);
        let all: Vec<usize> = (0..images.len()).collect();
        Some(nll_bound_of(
            &trained.model,
            &schedule,
            images.batch(&all, device),
            Decoder::Discretized8Bit,
            Some(PosteriorVariance::FixedSmall),
            seed.wrapping_add(6),
        )?)
    } else {
        None
    };

    let report = ImageReport {
        backend: backend.to_string(),
        dataset: config.data.dataset,
        train_images: data.train.len(),
        parameters,
        sampler: crate::pipeline::sampler_description(&config.sampling, config.diffusion.timesteps),
        trained: trained_score,
        floor,
        untrained: untrained_score,
        nll,
        nll_images: config.nll_images,
        train_seconds,
        seconds_per_epoch: train_seconds / config.train.epochs.max(1) as f64,
        sample_seconds,
        classifier_seconds,
    };
    Ok(ImageRun {
        config: config.clone(),
        data,
        schedule,
        model: trained.model,
        history: trained.history,
        output,
        classes,
        report,
        classifier,
        real_features,
    })
}

/// The U-Net of `config` for `shape` with the run's initial weights.
fn init_model(
    config: &ImageExperimentConfig,
    shape: crate::model::ImageShape,
    device: &Device,
    seed: u64,
) -> Result<UNet> {
    config.model.validate_shape(shape)?;
    config.model.validate("model.")?;
    Ok(seeded(device, seed.wrapping_add(1), || {
        config
            .model
            .init(shape, device)
            .expect("config and shape validated above")
    }))
}

/// Sample `classes.len()` images with the configured sampler (guided when the model is
/// conditional), recording the states at `record`.
/// `schedule` is the one `config.diffusion` builds.
pub fn sample_images(
    config: &ImageExperimentConfig,
    schedule: &NoiseSchedule,
    model: &UNet,
    classes: &[usize],
    record: &[usize],
    device: &Device,
) -> Result<SampleOutput<Vec<f32>>> {
    use crate::model::Denoise;
    let sampler = config.sampling.init(schedule)?;
    let mut rng = NoiseSource::new(config.seed.wrapping_add(3));
    if model.num_classes() > 0 {
        let guided = Guided::new(model, classes, config.sampling.guidance_scale, device)?;
        sampler.sample_rows(&guided, classes.len(), &mut rng, record, device)
    } else {
        sampler.sample_rows(model, classes.len(), &mut rng, record, device)
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
    /// Sample the trained model again with `sampling` (same classes, same seed) and score the
    /// images with the run's classifier; also returns the seconds sampling took.
    pub fn score_sampling(
        &self,
        sampling: &SamplingConfig,
        device: &Device,
    ) -> Result<(ClassifierScore, f64)> {
        let config = ImageExperimentConfig {
            sampling: sampling.clone(),
            ..self.config.clone()
        };
        config.validate()?;
        let started = Instant::now();
        let out = sample_images(
            &config,
            &self.schedule,
            &self.model,
            &self.classes,
            &[],
            device,
        )?;
        let seconds = started.elapsed().as_secs_f64();
        let features = self.classifier.feature_rows(&out.samples, device)?;
        let asked = self.config.model.num_classes > 0;
        let score = ClassifierScore {
            fcd: frechet_distance(&features, &self.real_features)?,
            class_accuracy: if asked {
                Some(
                    self.classifier
                        .accuracy(&out.samples, &self.classes, device)?,
                )
            } else {
                None
            },
        };
        Ok((score, seconds))
    }

    fn names(&self) -> Vec<String> {
        self.config.data.dataset.class_names()
    }

    /// Screen pixels per image pixel: tiles about 48 pixels high (8x8 digits drawn 6 times as
    /// large), so that a grid of 16 columns fits a notebook's width.
    fn scale(&self) -> u32 {
        (48 / self.data.train.height.max(1)).clamp(2, 8) as u32
    }

    /// `real_vs_generated.png`: per class, real training images beside generated ones.
    pub fn real_vs_generated(&self) -> ImageGrid {
        let names = self.names();
        let k = if self.config.model.num_classes > 0 {
            10
        } else {
            1
        };
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for (class, name) in names.iter().enumerate().take(k) {
            let real: Vec<Tile> = (0..self.data.train.len())
                .filter(|&i| k == 1 || self.data.train.labels[i] == class)
                .take(PER_CLASS)
                .map(|i| self.data.train.image(i).to_vec())
                .collect();
            let generated = self
                .output
                .samples
                .iter()
                .zip(&self.classes)
                .filter(|(_, c)| **c == class)
                .take(PER_CLASS)
                .map(|(s, _)| tile_from_unit(s));
            rows.push(real.into_iter().chain(generated).collect());
            labels.push(if k == 1 { String::new() } else { name.clone() });
        }
        let mut columns = vec![String::new(); 2 * PER_CLASS];
        columns[0] = "real".into();
        columns[PER_CLASS] = format!("generated ({})", self.report.sampler);
        ImageGrid::new(
            format!(
                "{}: real (left) and generated (right), {}",
                self.config.data.dataset,
                if k > 1 {
                    "one row per class"
                } else {
                    "unconditional"
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
        let mut rng = NoiseSource::new(self.config.seed.wrapping_add(7));
        let noise = rng.normal(x0.dims(), device);
        let mut columns: Vec<Vec<Vec<f32>>> = Vec::new();
        for &t in &times {
            let x_t = if t == 0 {
                x0.clone()
            } else {
                crate::diffusion::q_sample(&self.schedule, x0.clone(), &[t - 1], noise.clone())
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
    fn shown_times(&self) -> Vec<usize> {
        let mut times: Vec<usize> = self.output.trajectory.iter().map(|f| f.t).collect();
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
        let labels = if self.config.model.num_classes > 0 {
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
        let k = if self.config.model.num_classes > 0 {
            10
        } else {
            1
        };
        let per_row = 10;
        let mut picks: Vec<Vec<usize>> = vec![Vec::new(); k];
        for (i, &c) in self.classes.iter().enumerate() {
            let row = if k == 1 { (i / per_row).min(9) } else { c };
            if row < picks.len() && picks[row].len() < per_row {
                picks[row].push(i);
            }
        }
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
    pub fn quality_table(&self) -> crate::notebook::Table {
        let mut table = crate::notebook::Table::new([
            "images",
            "Fréchet classifier distance",
            "classified as the class asked for",
        ]);
        let pct = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{:.1} %", 100.0 * a));
        let r = &self.report;
        for (label, s) in [
            ("generated (trained model)", &r.trained),
            ("real, held out (floor)", &r.floor),
            ("generated (untrained model)", &r.untrained),
        ] {
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
pub fn classifier_path(config: &ImageExperimentConfig, dir: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&config.classifier)
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
    config: &ImageExperimentConfig,
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
    save_model(&run.model, &out.join(files::MODEL))?;
    io::write_atomic(
        &out.join(files::REAL_VS_GENERATED),
        run.real_vs_generated().to_png()?.bytes(),
    )?;
    io::write_atomic(
        &out.join(files::FORWARD_PROCESS),
        run.forward_process(device)?.to_png()?.bytes(),
    )?;
    io::write_atomic(
        &out.join(files::REVERSE_PROCESS),
        run.reverse_process().to_png()?.bytes(),
    )?;
    plot::save_gif(
        &run.sampling_animation(),
        &out.join(files::SAMPLING_ANIMATION),
        crate::pipeline::ANIMATION_FRAME_MS,
    )?;
    plot::save(&run.training_curve(), &out.join(files::TRAINING_CURVE))?;
    staged.commit()?;
    Ok(run)
}
