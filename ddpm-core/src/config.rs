//! Every knob of an experiment, with defaults, TOML/JSON loading and validation.
//!
//! One config for every experiment, on points or on images: the data says which, the model
//! section says which network (the MLP or the U-Net) with the head every network shares.
//!
//! ```
//! use ddpm_core::prelude::*;
//! let mut config = ExperimentConfig::default();
//! config.data.dataset = DatasetKind::Circles.into();
//! config.diffusion.schedule = ScheduleKind::Cosine;
//! config.validate().unwrap();
//!
//! let digits = ExperimentConfig::digits();
//! assert_eq!(digits.model.network.kind(), "unet");
//! digits.validate().unwrap();
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classifier::ClassifierConfig;
use crate::data::{DataConfig, Dataset, ImageDataset};
use crate::display::Table;
use crate::error::{DdpmError, Result};
use crate::model::{ModelConfig, ModelVariance, Network, NetworkConfig, UNetConfig};
use crate::sampling::{SamplerKind, SamplingConfig};
use crate::schedule::ScheduleConfig;
use crate::train::TrainConfig;

/// One experiment: data, diffusion, model, training and sampling, plus the seed all randomness
/// derives from, whether the data is points or images. Sections missing from a file take their
/// defaults; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Master seed: data, initial weights, batches, timesteps and noise all derive from it.
    pub seed: u64,
    /// The training data.
    pub data: DataConfig,
    /// The noise schedule.
    pub diffusion: ScheduleConfig,
    /// The denoiser: its head (target, variance, classes) and its network.
    pub model: ModelConfig,
    /// Training.
    pub train: TrainConfig,
    /// Sampling (for images, `n_samples` images in equal shares per class).
    pub sampling: SamplingConfig,
    /// How image samples are measured: the classifier and the NLL bound. 2-D runs are measured
    /// against fresh draws of their distribution and do not read it. Left out of the saved
    /// config when it has its defaults.
    #[serde(skip_serializing_if = "EvaluationConfig::is_default")]
    pub evaluation: EvaluationConfig,
}

/// How image samples are measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    /// The classifier behind the Fréchet classifier distance and the class accuracy.
    pub classifier: ClassifierConfig,
    /// Held-out images the NLL bound is computed on (0 skips it: it costs T forward passes
    /// per image).
    pub nll_images: usize,
}

impl Default for EvaluationConfig {
    /// The digits' measurement: a classifier trained 20 epochs, the bound on 100 images.
    fn default() -> Self {
        Self {
            classifier: ClassifierConfig {
                epochs: 20,
                ..ClassifierConfig::default()
            },
            nll_images: 100,
        }
    }
}

impl EvaluationConfig {
    /// Whether every field has its default (then the saved config leaves the section out).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            data: DataConfig::default(),
            diffusion: ScheduleConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            sampling: SamplingConfig::default(),
            evaluation: EvaluationConfig::default(),
        }
    }
}

/// Seeds of the independent random streams of one experiment, derived from the master seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeds {
    /// The training set.
    pub data: u64,
    /// Initial weights.
    pub init: u64,
    /// Batches, timesteps and noise during training.
    pub train: u64,
    /// Noise during sampling.
    pub sample: u64,
    /// Held-out draws of the data for metrics.
    pub eval: u64,
    /// Images: the classifier's initial weights and batches.
    pub classifier: u64,
    /// The likelihood bound's noise.
    pub nll: u64,
    /// The noise of figures that draw their own (the forward process on images).
    pub figures: u64,
}

impl ExperimentConfig {
    /// A small budget for notebooks and quick looks: 4000 points, T = 200 (betas scaled by
    /// 1000/T), 40 epochs, 1000 samples. Trains and samples in about 10 s on a 2-core CPU and
    /// still draws clean moons; [`ExperimentConfig::default`] is the command's full budget.
    pub fn quick() -> Self {
        let mut config = Self::default();
        config.data.n_points = 4000;
        config.diffusion.timesteps = 200;
        config.train.epochs = 40;
        config.sampling.n_samples = 1000;
        config.sampling.trajectory_frames = 40;
        config
    }

    /// 8x8 digits, class-conditional: T = 1000, a [32, 64] U-Net, 40 epochs (about 2.5
    /// minutes on two CPU cores), 300 samples with DDIM in 50 steps at guidance w = 1.
    /// `configs/digits.toml` writes it out.
    pub fn digits() -> Self {
        Self {
            seed: 42,
            data: DataConfig {
                dataset: Dataset::Images(ImageDataset::Digits),
                n_points: 0,
                data_dir: None,
                held_out: 300,
            },
            diffusion: ScheduleConfig::default(),
            model: ModelConfig {
                num_classes: 10,
                ..ModelConfig::new(NetworkConfig::Unet(UNetConfig {
                    channels: vec![32, 64],
                    embedding_size: 64,
                    ..UNetConfig::default()
                }))
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
            evaluation: EvaluationConfig::default(),
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
        config.evaluation.nll_images = 0;
        config
    }

    /// Fashion-MNIST 28x28: a [32, 64, 64] U-Net (28 -> 14 -> 7) on 60000 images.
    pub fn fashion_mnist() -> Self {
        let mut config = Self::digits();
        config.data.dataset = Dataset::Images(ImageDataset::FashionMnist);
        config.data.held_out = 1000;
        let unet = config
            .model
            .unet_mut()
            .expect("the digits' network is a U-Net");
        unet.channels = vec![32, 64, 64];
        unet.embedding_size = 128;
        config.train.epochs = 5;
        config.train.learning_rate = 1e-3;
        config.sampling.n_samples = 1000;
        config.evaluation.classifier.epochs = 3;
        // T forward passes per image: 20 images cost about 80 s on two CPU cores
        config.evaluation.nll_images = 20;
        config
    }

    /// The defaults for `dataset`: the 2-D default on another distribution, or the image
    /// presets (MNIST as Fashion-MNIST; CIFAR-10 adds width and attention).
    pub fn for_dataset(dataset: Dataset) -> Self {
        match dataset {
            Dataset::Points(_) => {
                let mut config = Self::default();
                config.data.dataset = dataset;
                config
            }
            Dataset::Images(ImageDataset::Digits) => Self::digits(),
            Dataset::Images(ImageDataset::FashionMnist) => Self::fashion_mnist(),
            Dataset::Images(ImageDataset::Mnist) => {
                let mut config = Self::fashion_mnist();
                config.data.dataset = dataset;
                config
            }
            Dataset::Images(ImageDataset::Cifar10) => {
                let mut config = Self::fashion_mnist();
                config.data.dataset = dataset;
                let unet = config.model.unet_mut().expect("a U-Net");
                unet.channels = vec![64, 128, 128];
                unet.attention = true;
                unet.dropout = 0.1;
                config.train.epochs = 20;
                config
            }
        }
    }

    /// Check every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<()> {
        self.data.validate("data.")?;
        self.diffusion.validate("diffusion.")?;
        self.model.validate("model.")?;
        self.model
            .validate_for("model.", self.data.dataset.shape())?;
        self.train.validate("train.")?;
        self.sampling.validate("sampling.")?;
        self.sampling
            .validate_for("sampling.", self.diffusion.timesteps)?;
        if self.model.variance == ModelVariance::LearnedRange && self.train.vlb_weight <= 0.0 {
            return Err(DdpmError::invalid(
                "train.vlb_weight",
                self.train.vlb_weight,
                "must be > 0 when model.variance = learned_range: the bound term is all that trains the variance",
            ));
        }
        let classes = self.data.dataset.num_classes();
        if self.model.num_classes != 0 && self.model.num_classes != classes {
            return Err(DdpmError::invalid(
                "model.num_classes",
                self.model.num_classes,
                format!(
                    "must be 0 (unconditional) or {classes}, the number of classes of {} \
                     (moons, circles, spirals: 2; swiss_roll: 4; eight_gaussians, checkerboard: 8; \
                     every image dataset: 10)",
                    self.data.dataset
                ),
            ));
        }
        if let Some(class) = self.sampling.class {
            let k = self.model.num_classes;
            if class >= k {
                return Err(DdpmError::invalid(
                    "sampling.class",
                    class,
                    if k == 0 {
                        "needs a conditional model: set model.num_classes (or --conditional)"
                            .to_string()
                    } else {
                        format!("must be in 0..{k} (model.num_classes)")
                    },
                ));
            }
        }
        if self.model.num_classes == 0 && self.sampling.guidance_scale != 1.0 {
            return Err(DdpmError::invalid(
                "sampling.guidance_scale",
                self.sampling.guidance_scale,
                "needs a conditional model (model.num_classes, or --conditional); leave it at 1",
            ));
        }
        if self.data.n_points > 0 && self.train.batch_size > self.data.n_points {
            return Err(DdpmError::invalid(
                "train.batch_size",
                self.train.batch_size,
                format!("must be <= data.n_points ({})", self.data.n_points),
            ));
        }
        if self.data.dataset.is_images() {
            self.evaluation
                .classifier
                .validate("evaluation.classifier.")?;
            if self.evaluation.nll_images > self.data.held_out {
                return Err(DdpmError::invalid(
                    "evaluation.nll_images",
                    self.evaluation.nll_images,
                    format!("must be at most data.held_out ({})", self.data.held_out),
                ));
            }
        }
        Ok(())
    }

    /// The network this config describes, built for its data (2-D points, or the image
    /// dataset's shape) and its T, with initial weights drawn from `seed` (the run uses
    /// `seeds().init`). Errors name the field out of range.
    pub fn init_model(&self, seed: u64, device: &burn::prelude::Device) -> Result<Network> {
        let shape = self.data.dataset.shape();
        self.model.validate("model.")?;
        self.model.validate_for("model.", shape)?;
        Ok(crate::rng::seeded(device, seed, || {
            self.model
                .init(shape, self.diffusion.timesteps, device)
                .expect("the model config and the data shape were validated above")
        }))
    }

    /// The per-purpose seeds: changing the sampling seed does not change training, and so on.
    ///
    /// Points and images use the same streams.
    ///
    /// They are the master seed plus small offsets, so master seeds 42 and 43 share streams
    /// (43's data stream is 42's initial weights). A sweep over seeds should space them apart, as
    /// [`crate::experiment::run_experiment`] does ([`crate::experiment::SEED_STRIDE`]).
    pub fn seeds(&self) -> Seeds {
        let s = self.seed;
        Seeds {
            data: s,
            init: s.wrapping_add(1),
            train: s.wrapping_add(2),
            sample: s.wrapping_add(3),
            eval: s.wrapping_add(1_000_003),
            classifier: s.wrapping_add(5),
            nll: s.wrapping_add(6),
            figures: s.wrapping_add(7),
        }
    }

    /// Parse TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| DdpmError::ConfigParse {
            path: "<toml>".into(),
            message: e.to_string(),
        })
    }

    /// Parse JSON text.
    pub fn from_json_str(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| DdpmError::ConfigParse {
            path: "<json>".into(),
            message: e.to_string(),
        })
    }

    /// Load a `.toml` or `.json` file (by extension; anything else is tried as TOML) and validate it.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DdpmError::io(path, e))?;
        let parsed = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Self::from_json_str(&text),
            _ => Self::from_toml_str(&text),
        };
        let config = parsed.map_err(|e| match e {
            DdpmError::ConfigParse { message, .. } => DdpmError::ConfigParse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Pretty JSON, as saved beside results.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises to JSON")
    }

    /// TOML, for a user to edit.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises to TOML")
    }

    /// The knobs a learner turns, one line per section, to show in place of the whole TOML
    /// ([`Self::to_toml`] has every field).
    pub fn overview(&self) -> Table {
        let (d, m, t, s) = (&self.diffusion, &self.model, &self.train, &self.sampling);
        let scaled = if d.scale_to_timesteps && d.timesteps != 1000 {
            format!(" (scaled by 1000/T = {:.3})", 1000.0 / d.timesteps as f64)
        } else {
            String::new()
        };
        let classes = match m.num_classes {
            0 => String::new(),
            k => format!(", {k} classes (label dropout {})", t.label_dropout),
        };
        let sampler = match s.method {
            SamplerKind::Ddpm => format!("DDPM, {} variance", s.variance),
            SamplerKind::Ddim => format!("DDIM, {} steps, eta {}", s.steps, s.eta),
        };
        let guidance = if m.num_classes > 0 {
            format!(", guidance w = {}", s.guidance_scale)
        } else {
            String::new()
        };
        let mut table = Table::new(["section", "setting"]);
        let examples = match (self.data.dataset.is_images(), self.data.n_points) {
            (false, n) => format!("{n} points"),
            (true, 0) => "all training images".to_string(),
            (true, n) => format!("the first {n} training images"),
        };
        table.push([
            "data".to_string(),
            format!("{}, {examples}; seed {}", self.data.dataset, self.seed),
        ]);
        table.push([
            "diffusion".to_string(),
            format!(
                "T = {}, {} schedule, beta {}..{}{scaled}",
                d.timesteps, d.schedule, d.beta_start, d.beta_end
            ),
        ]);
        table.push(["model".to_string(), format!("{}{classes}", m.describe())]);
        table.push([
            "train".to_string(),
            format!(
                "{} epochs, batch {}, learning rate {}, EMA decay {}",
                t.epochs, t.batch_size, t.learning_rate, t.ema_decay
            ),
        ]);
        table.push([
            "sampling".to_string(),
            format!("{} samples, {sampler}{guidance}", s.n_samples),
        ]);
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DatasetKind;
    use crate::schedule::ScheduleKind;

    #[test]
    fn defaults_are_valid_and_match_the_tutorial() {
        let c = ExperimentConfig::default();
        c.validate().unwrap();
        assert_eq!(c.diffusion.timesteps, 1000);
        assert_eq!(c.diffusion.schedule, ScheduleKind::Linear);
        assert_eq!((c.diffusion.beta_start, c.diffusion.beta_end), (1e-4, 0.02));
    }

    #[test]
    fn json_and_toml_round_trip() {
        let mut c = ExperimentConfig::default();
        c.data.dataset = DatasetKind::SwissRoll.into();
        c.train.ema_decay = 0.0;
        c.train.grad_clip = 0.0;
        assert_eq!(ExperimentConfig::from_json_str(&c.to_json()).unwrap(), c);
        assert_eq!(ExperimentConfig::from_toml_str(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn partial_toml_takes_defaults_for_the_rest() {
        let c = ExperimentConfig::from_toml_str("seed = 7\n[data]\ndataset = \"checkerboard\"\n")
            .unwrap();
        assert_eq!(c.seed, 7);
        assert_eq!(c.data.dataset, DatasetKind::Checkerboard);
        assert_eq!(c.train, TrainConfig::default());
    }

    #[test]
    fn unknown_keys_and_names_are_rejected_with_the_field() {
        let err = ExperimentConfig::from_toml_str("[train]\nepoch = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("epoch") && err.contains("epochs"), "{err}");
        let err = ExperimentConfig::from_toml_str("[data]\ndataset = \"imagenet\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("imagenet") && err.contains("moons") && err.contains("digits"),
            "{err}"
        );
        let err = ExperimentConfig::from_toml_str("[model.network]\nkind = \"mlp\"\nwidth = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("width") && err.contains("hidden_size"),
            "{err}"
        );
    }

    #[test]
    fn every_impossible_value_names_its_field() {
        type Edit = fn(&mut ExperimentConfig);
        let cases: Vec<(Edit, &str)> = vec![
            (|c| c.diffusion.timesteps = 0, "diffusion.timesteps"),
            (|c| c.diffusion.beta_start = -0.1, "diffusion.beta_start"),
            (|c| c.diffusion.beta_end = 1.0, "diffusion.beta_end"),
            (|c| c.diffusion.beta_start = 0.05, "diffusion.beta_start"),
            (|c| c.train.batch_size = 0, "train.batch_size"),
            (|c| c.train.batch_size = 100_000, "train.batch_size"),
            (|c| c.train.epochs = 0, "train.epochs"),
            (|c| c.train.learning_rate = f64::NAN, "train.learning_rate"),
            (
                |c| c.train.learning_rate = f64::INFINITY,
                "train.learning_rate",
            ),
            (|c| c.train.ema_decay = 1.0, "train.ema_decay"),
            (|c| c.train.grad_clip = -1.0, "train.grad_clip"),
            (|c| c.train.grad_clip = f32::NAN, "train.grad_clip"),
            (|c| c.train.adam_epsilon = 0.0, "train.adam_epsilon"),
            (|c| c.train.adam_epsilon = f64::NAN, "train.adam_epsilon"),
            (
                |c| c.model.mlp_mut().unwrap().hidden_size = 0,
                "model.network.hidden_size",
            ),
            (
                |c| c.model.mlp_mut().unwrap().embedding_size = 3,
                "model.network.embedding_size",
            ),
            (
                |c| c.model.mlp_mut().unwrap().input_scale = -1.0,
                "model.network.input_scale",
            ),
            (
                |c| c.model.network = NetworkConfig::Unet(UNetConfig::default()),
                "model.network.kind",
            ),
            (
                |c| c.sampling.guidance_scale = 2.0,
                "sampling.guidance_scale",
            ),
            (|c| c.data.n_points = 0, "data.n_points"),
            (|c| c.sampling.n_samples = 0, "sampling.n_samples"),
            (
                |c| c.sampling.trajectory_frames = 1,
                "sampling.trajectory_frames",
            ),
            (|c| c.sampling.eta = 1.5, "sampling.eta"),
            (
                |c| {
                    c.sampling.method = crate::sampling::SamplerKind::Ddim;
                    c.sampling.steps = 2000;
                },
                "sampling.steps",
            ),
            (|c| c.train.min_snr_gamma = 0.0, "train.min_snr_gamma"),
            (|c| c.train.vlb_weight = -0.1, "train.vlb_weight"),
            (|c| c.train.label_dropout = 1.5, "train.label_dropout"),
            (|c| c.train.label_dropout = f64::NAN, "train.label_dropout"),
            (|c| c.model.num_classes = 3, "model.num_classes"),
            (|c| c.model.num_classes = 5000, "model.num_classes"),
            (
                |c| c.sampling.guidance_scale = -1.0,
                "sampling.guidance_scale",
            ),
            (|c| c.sampling.class = Some(0), "sampling.class"),
            (
                |c| {
                    c.model.num_classes = 2;
                    c.sampling.class = Some(2);
                },
                "sampling.class",
            ),
            (
                |c| {
                    c.model.variance = crate::model::ModelVariance::LearnedRange;
                    c.train.vlb_weight = 0.0;
                },
                "train.vlb_weight",
            ),
        ];
        for (edit, field) in cases {
            let mut c = ExperimentConfig::default();
            edit(&mut c);
            let err = c.validate().expect_err(field).to_string();
            assert!(err.contains(field), "expected `{field}` in: {err}");
        }
    }

    #[test]
    fn image_configs_validate_and_name_their_fields() {
        for dataset in ImageDataset::ALL {
            let c = ExperimentConfig::for_dataset((*dataset).into());
            c.validate().unwrap();
            assert_eq!(ExperimentConfig::from_json_str(&c.to_json()).unwrap(), c);
            assert_eq!(ExperimentConfig::from_toml_str(&c.to_toml()).unwrap(), c);
        }
        type Edit = fn(&mut ExperimentConfig);
        let cases: Vec<(Edit, &str)> = vec![
            (
                |c| c.model.network = NetworkConfig::default(),
                "model.network.kind",
            ),
            (
                |c| c.model.unet_mut().unwrap().channels = vec![32, 64, 64, 64, 64],
                "image height",
            ),
            (
                |c| c.model.unet_mut().unwrap().groups = 0,
                "model.network.groups",
            ),
            (|c| c.model.num_classes = 2, "model.num_classes"),
            (|c| c.sampling.class = Some(10), "sampling.class"),
            (|c| c.evaluation.nll_images = 301, "evaluation.nll_images"),
            (
                |c| c.evaluation.classifier.epochs = 0,
                "evaluation.classifier.epochs",
            ),
            (|c| c.data.held_out = 1, "data.held_out"),
        ];
        for (edit, field) in cases {
            let mut c = ExperimentConfig::digits();
            edit(&mut c);
            let err = c.validate().expect_err(field).to_string();
            assert!(err.contains(field), "expected `{field}` in: {err}");
        }
        // A 2-D config names no image-only section when saved.
        assert!(!ExperimentConfig::default().to_toml().contains("evaluation"));
    }

    #[test]
    fn seeds_are_distinct_per_purpose() {
        let s = ExperimentConfig::default().seeds();
        let all = [
            s.data,
            s.init,
            s.train,
            s.sample,
            s.eval,
            s.classifier,
            s.nll,
            s.figures,
        ];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
            }
        }
    }
}
