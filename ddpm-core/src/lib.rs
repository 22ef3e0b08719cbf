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
//! let data = config.data.init(seeds.data)?;
//! let model = config.init_model(seeds.init, &device)?; // the MLP, for 2-D points
//! let trained = train(model, &schedule, &data, &config.train, seeds.train, &device, &mut Silent)?;
//!
//! let sampler = config.sampling.init(&schedule)?; // DDPM, or DDIM if sampling.method says so
//! let out = sampler.sample(&trained.model, 64, &mut NoiseSource::new(seeds.sample), &[], &device)?;
//! let reference = Dataset2d::generate(DatasetKind::Moons, 64, 4);
//! let ed = energy_distance(&out.samples, &reference.points)?;
//! assert!(ed.is_finite());
//! # Ok::<(), ddpm_core::DdpmError>(())
//! ```

#![warn(missing_docs)]

pub mod analysis;
pub mod backend;
mod choice;
pub mod classifier;
pub mod config;
pub mod data;
pub mod diffusion;
pub mod display;
mod error;
pub mod experiment;
pub mod io;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod plot;
pub mod points;
#[cfg(feature = "cli")]
pub mod progress;
pub mod raster;
pub mod rng;
pub mod sampling;
pub mod schedule;
pub mod time;
pub mod train;

pub use backend::Backend;
/// burn itself, so a notebook needs one `:dep` line.
pub use burn;

/// The display types under the name they had before they moved to [`display`].
#[deprecated(note = "use `ddpm_core::display`")]
pub mod notebook {
    pub use crate::display::*;
}
pub use error::{DdpmError, Result};

/// The names most programs need: `use ddpm_core::prelude::*;`.
pub mod prelude {
    pub use crate::Backend;
    pub use crate::analysis::{score_field, sinusoidal_table};
    pub use crate::config::{EvaluationConfig, ExperimentConfig};
    pub use crate::data::{DataConfig, DataShape, Dataset, Dataset2d, DatasetKind, ImageDataset};
    pub use crate::diffusion::{
        Prediction, mean_from_eps, predict_x0_from_eps, q_posterior, q_sample, q_step,
        timestep_tensor,
    };
    pub use crate::display::{Gif, Svg, Table};
    pub use crate::experiment::{Comparison, ExperimentName, run_experiment};
    pub use crate::loss::{
        LossWeighting, NllBound, Objective, eps_error_by_timestep, eps_error_chart, nll_bound,
        noise_prediction_loss, prior_term, training_loss,
    };
    pub use crate::metrics::{QualityReport, Verdict, energy_distance, mmd_rbf};
    pub use crate::model::{
        Activation, Denoise, Denoiser, DenoiserOutput, Head, InputEncoding, MlpConfig, MlpDenoiser,
        ModelConfig, ModelVariance, Network, NetworkConfig, TimeEmbeddingKind, UNet, UNetConfig,
    };
    pub use crate::pipeline::{PipelineRun, Run};
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
    pub use crate::time::PaperTime;
    pub use crate::train::{
        Ema, LossHistory, PrintEvery, Silent, TrainConfig, TrainObserver, Trained, load_model,
        save_model, save_network, train,
    };
    pub use crate::{DdpmError, Result};
    pub use burn::prelude::{Device, Module, Tensor};
}
