//! # ddpm-core
//!
//! Denoising diffusion probabilistic models (Ho et al. 2020) on [burn](https://burn.dev), written
//! to be read and changed: noise schedules, the forward process, a denoiser with a time embedding
//! that predicts the noise, x_0 or the velocity (optionally with a learned variance), training
//! with L_simple, min-SNR weighting or the hybrid loss, DDPM and DDIM sampling, the likelihood
//! bound, toy datasets, sample-quality metrics, charts, and experiment grids
//! ([`experiment::run_experiment`]).
//!
//! The data flows one way: config -> data -> schedule + model -> trainer -> sampler -> metrics ->
//! charts. The whole flow on a tiny budget:
//!
//! ```
//! use ddpm_core::prelude::*;
//!
//! let mut config = ExperimentConfig::default();
//! config.data.n_points = 256;
//! config.diffusion.timesteps = 50;
//! config.train.epochs = 2;
//! config.sampling.n_samples = 64;
//!
//! let device = Backend::default_cpu().device()?;
//! let seeds = config.seeds(); // one named stream per purpose, all from config.seed
//! let schedule = config.diffusion.init()?;
//! let data = config.data.init(seeds.data);
//! let model = seeded(&device, seeds.init, || config.model.init(schedule.timesteps(), &device));
//! let trained = train(model, &schedule, &data, &config.train, seeds.train, &device, &mut Silent)?;
//!
//! let sampler = config.sampling.sampler(&schedule);
//! let out = sampler.sample(&trained.model, 64, &mut NoiseSource::new(seeds.sample), &[], &device)?;
//! let reference = Dataset2d::generate(DatasetKind::Moons, 64, 4);
//! let ed = energy_distance(&out.samples, &reference.points)?;
//! assert!(ed.is_finite());
//! # Ok::<(), ddpm_core::DdpmError>(())
//! ```

#![warn(missing_docs)]

pub mod analysis;
mod choice;
pub mod classifier;
pub mod config;
pub mod data;
pub mod diffusion;
mod error;
pub mod experiment;
pub mod io;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod notebook;
pub mod pipeline;
pub mod plot;
pub mod points;
pub mod progress;
pub mod rng;
pub mod sampling;
pub mod schedule;
pub mod train;

/// burn itself, so a notebook needs one `:dep` line.
pub use burn;
pub use error::{DdpmError, Result};

use burn::prelude::Device;

choice::choice_enum! {
    /// Where tensors live and which kernels run them.
    pub enum Backend ("backend") {
        /// burn's pure-Rust CPU backend (the default: fastest here).
        Flex = "flex",
        /// The ndarray CPU backend (deprecated by burn 0.22 in favour of flex).
        Ndarray = "ndarray",
        /// GPU through wgpu (Vulkan, Metal, DX12); needs the `wgpu` cargo feature.
        Wgpu = "wgpu",
    }
}

impl Backend {
    /// The CPU backend used when none is named: flex if compiled in, else ndarray.
    pub fn default_cpu() -> Self {
        if cfg!(feature = "flex") {
            Backend::Flex
        } else {
            Backend::Ndarray
        }
    }

    /// Whether this backend was compiled in.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Ndarray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backends compiled into this build.
    pub fn available() -> Vec<Backend> {
        Self::ALL
            .iter()
            .copied()
            .filter(|b| b.is_available())
            .collect()
    }

    /// The backend a (non-autodiff) device belongs to, among those compiled in.
    pub fn of(device: &Device) -> Option<Backend> {
        Self::available()
            .into_iter()
            .find(|b| b.device().ok().as_ref() == Some(device))
    }

    /// A short name for `device`: the backend's name, or the device's debug form.
    pub fn label(device: &Device) -> String {
        Self::of(device).map_or_else(|| format!("{device:?}"), |b| b.name().to_string())
    }

    /// A device of this backend (without autodiff; training adds it).
    pub fn device(self) -> Result<Device> {
        let missing = |feature: &str| DdpmError::BackendUnavailable {
            backend: self.name().to_string(),
            reason: format!(
                "this build lacks the `{feature}` cargo feature; compiled in: {}",
                Self::available()
                    .iter()
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            // burn 0.22 deprecates ndarray; the tutorial still offers it
            Backend::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(Default::default())),
            #[allow(unreachable_patterns)]
            other => Err(missing(other.name())),
        }
    }
}

/// The names most programs need: `use ddpm_core::prelude::*;`.
pub mod prelude {
    pub use crate::Backend;
    pub use crate::analysis::{score_field, sinusoidal_table};
    pub use crate::config::ExperimentConfig;
    pub use crate::data::{DataConfig, Dataset2d, DatasetKind};
    pub use crate::diffusion::{
        Prediction, mean_from_eps, predict_x0_from_eps, q_posterior, q_sample, q_step,
        timestep_tensor,
    };
    pub use crate::experiment::{Comparison, ExperimentName, run_experiment};
    pub use crate::loss::{
        LossWeighting, NllBound, Objective, nll_bound, noise_prediction_loss, training_loss,
    };
    pub use crate::metrics::{QualityReport, energy_distance, mmd_rbf};
    pub use crate::model::{
        Activation, Denoise, Denoiser, DenoiserConfig, DenoiserOutput, InputEncoding, MlpDenoiser,
        ModelVariance, TimeEmbeddingKind,
    };
    pub use crate::notebook::{Gif, Svg, Table};
    pub use crate::pipeline::PipelineRun;
    pub use crate::plot::{
        self, Animation, Bounds, Chart, GENERATED, Heatmap, Panel, REAL, ScatterPanels, VectorField,
    };
    pub use crate::rng::{NoiseSource, seeded};
    pub use crate::sampling::{
        DdimSampler, DdpmSampler, Guided, PosteriorVariance, ReverseStep, SampleOutput, Sampler,
        SamplerKind, SamplingConfig, StepRule, TimestepSpacing, from_points, from_rows, run_chain,
        to_points, to_rows,
    };
    pub use crate::schedule::{NoiseSchedule, ScheduleConfig, ScheduleKind};
    pub use crate::train::{
        Ema, LossHistory, PrintEvery, Silent, TrainConfig, TrainObserver, Trained, load_model,
        save_model, train,
    };
    pub use crate::{DdpmError, Result};
    pub use burn::prelude::{Device, Module, Tensor};
}
