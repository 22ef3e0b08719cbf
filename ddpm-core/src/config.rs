//! Every knob of an experiment, with defaults, TOML/JSON loading and validation.
//!
//! ```
//! use ddpm_core::prelude::*;
//! let mut config = ExperimentConfig::default();
//! config.data.dataset = DatasetKind::Circles;
//! config.diffusion.schedule = ScheduleKind::Cosine;
//! config.validate().unwrap();
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::DataConfig;
use crate::model::DenoiserConfig;
use crate::notebook::Table;
use crate::sampling::{SamplerKind, SamplingConfig};
use crate::schedule::ScheduleConfig;
use crate::train::TrainConfig;
use crate::{DdpmError, Result};

/// One experiment: data, diffusion, model, training and sampling, plus the seed all randomness
/// derives from. Sections missing from a file take their defaults; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Master seed: data, initial weights, batches, timesteps and noise all derive from it.
    pub seed: u64,
    /// The training data.
    pub data: DataConfig,
    /// The noise schedule.
    pub diffusion: ScheduleConfig,
    /// The denoiser.
    pub model: DenoiserConfig,
    /// Training.
    pub train: TrainConfig,
    /// Sampling.
    pub sampling: SamplingConfig,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            data: DataConfig::default(),
            diffusion: ScheduleConfig::default(),
            model: DenoiserConfig::default(),
            train: TrainConfig::default(),
            sampling: SamplingConfig::default(),
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

    /// Check every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<()> {
        self.data.validate("data.")?;
        self.diffusion.validate("diffusion.")?;
        self.model.validate("model.")?;
        self.train.validate("train.")?;
        self.sampling.validate("sampling.")?;
        self.sampling
            .validate_for("sampling.", self.diffusion.timesteps)?;
        if self.model.variance == crate::model::ModelVariance::LearnedRange
            && self.train.vlb_weight <= 0.0
        {
            return Err(DdpmError::invalid(
                "train.vlb_weight",
                self.train.vlb_weight,
                "must be > 0 when model.variance = learned_range: the bound term is all that trains the variance",
            ));
        }
        let classes = crate::data::num_classes(self.data.dataset);
        if self.model.num_classes != 0 && self.model.num_classes != classes {
            return Err(DdpmError::invalid(
                "model.num_classes",
                self.model.num_classes,
                format!(
                    "must be 0 (unconditional) or {classes}, the number of classes of {} \
                     (moons, circles, spirals: 2; swiss_roll: 4; eight_gaussians, checkerboard: 8)",
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
        if self.train.batch_size > self.data.n_points {
            return Err(DdpmError::invalid(
                "train.batch_size",
                self.train.batch_size,
                format!("must be <= data.n_points ({})", self.data.n_points),
            ));
        }
        Ok(())
    }

    /// The per-purpose seeds: changing the sampling seed does not change training, and so on.
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
        table.push([
            "data".to_string(),
            format!(
                "{}, {} points; seed {}",
                self.data.dataset, self.data.n_points, self.seed
            ),
        ]);
        table.push([
            "diffusion".to_string(),
            format!(
                "T = {}, {} schedule, beta {}..{}{scaled}",
                d.timesteps, d.schedule, d.beta_start, d.beta_end
            ),
        ]);
        table.push([
            "model".to_string(),
            format!(
                "MLP {} wide x {} deep, {}, {} time embedding, predicts {}{classes}",
                m.hidden_size, m.depth, m.activation, m.time_embedding, m.prediction
            ),
        ]);
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
        c.data.dataset = DatasetKind::SwissRoll;
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
        let err = ExperimentConfig::from_toml_str("[data]\ndataset = \"mnist\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mnist") && err.contains("moons"), "{err}");
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
            (|c| c.model.hidden_size = 0, "model.hidden_size"),
            (|c| c.model.embedding_size = 3, "model.embedding_size"),
            (|c| c.model.input_scale = -1.0, "model.input_scale"),
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
    fn seeds_are_distinct_per_purpose() {
        let s = ExperimentConfig::default().seeds();
        let all = [s.data, s.init, s.train, s.sample, s.eval];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
            }
        }
    }
}
