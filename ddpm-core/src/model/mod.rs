//! Denoisers: networks that take a noisy point x_t and its timestep t and predict the noise.

mod embedding;
mod mlp;

pub use embedding::{TimeEmbeddingKind, sinusoidal_embedding};
pub use mlp::{Activation, DenoiserConfig, InputEncoding, MlpDenoiser};
