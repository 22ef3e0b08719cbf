//! Denoisers: networks that take a noisy point x_t and its timestep t and predict the noise (or
//! x_0, or the velocity), optionally with the variance of the reverse step.

mod embedding;
mod mlp;

pub use embedding::{TimeEmbeddingKind, sinusoidal_embedding};
pub use mlp::{
    Activation, DenoiserConfig, DenoiserOutput, InputEncoding, MlpDenoiser, ModelVariance,
};
