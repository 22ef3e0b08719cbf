//! Denoisers: networks that take a noisy point x_t and its timestep and predict the noise (or
//! x_0, or the velocity), optionally with the variance of the reverse step.
//!
//! Everything downstream — the samplers, the losses, training, the EMA, the likelihood bound and
//! the score field — sees a network only through the [`Denoiser`] trait. Its output says what it
//! predicts and carries the learned variance when there is one, so nothing has to be told the
//! network's target a second time or guess a variance from a tensor's width. A new network
//! plugs in by implementing the trait.

mod embedding;
mod gaussian;
mod mlp;
mod network;
mod unet;

use burn::module::{Module, ModuleDisplay};
use burn::prelude::*;

pub use embedding::{TimeEmbeddingKind, sinusoidal_embedding};
pub use gaussian::GaussianDenoiser;
pub use mlp::{Activation, InputEncoding, MlpConfig, MlpDenoiser};
pub use network::{Head, ModelConfig, ModelVariance, Network, NetworkConfig};
pub use unet::{UNet, UNetConfig};

use crate::diffusion::Prediction;

/// What a denoiser says about x_t: its prediction, what that prediction is, and the learned
/// variance when the network has one.
#[derive(Debug, Clone)]
pub struct DenoiserOutput {
    /// What `value` predicts: the noise, x_0 or the velocity.
    pub target: Prediction,
    /// The prediction, shaped like x_t (`[batch, data_size]`).
    pub value: Tensor<2>,
    /// The learned-range variance values v (Nichol & Dhariwal 2021, eq. 15), shaped like x_t;
    /// `None` for a network with a fixed variance.
    pub variance: Option<Tensor<2>>,
}

/// Class indices as the integer tensor a conditional denoiser takes.
pub fn class_tensor(classes: &[usize], device: &Device) -> Tensor<1, Int> {
    let ints: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
    Tensor::<1, Int>::from_ints(ints.as_slice(), device)
}

impl DenoiserOutput {
    /// A prediction of `target` with a fixed variance.
    pub fn new(target: Prediction, value: Tensor<2>) -> Self {
        Self {
            target,
            value,
            variance: None,
        }
    }

    /// The same prediction with learned-range variance values.
    pub fn with_variance(mut self, variance: Tensor<2>) -> Self {
        self.variance = Some(variance);
        self
    }
}

/// A network that denoises: the one seam between a model and the rest of the library.
///
/// Time is given as the 0-based index `i = t - 1` of the paper's step t (`0..T`), the index of
/// every coefficient vector of [`crate::schedule::NoiseSchedule`]. A conditional network also
/// takes one class per point, in `0..=num_classes()`: index `num_classes()` is the null class
/// (no condition), which `None` stands for.
///
/// This is what sampling, the likelihood bound and the score field need; training also needs
/// the network to be a burn module ([`Denoiser`]). A wrapper that is no module, such as
/// classifier-free guidance ([`crate::sampling::Guided`]), implements only this.
pub trait Denoise {
    /// What the output predicts.
    fn prediction(&self) -> Prediction;

    /// Whether the output carries a learned variance.
    fn learns_variance(&self) -> bool;

    /// Number of classes the network is conditioned on; 0 for an unconditional network.
    fn num_classes(&self) -> usize {
        0
    }

    /// Number of values in one example x_0: 2 for a point, `channels * height * width` for an
    /// image. Examples travel as the rows of a `[batch, data_size]` tensor (an image flattened
    /// channel-major, as [`crate::data::images::ImageSet`] stores it), so the forward process,
    /// the samplers and the losses, all element-wise, serve points and images alike.
    fn data_size(&self) -> usize;

    /// The prediction for examples `x_t` (`[batch, data_size]`) at time indices `t_index` (`[batch]`,
    /// each in `0..T`), for the classes `class` (`[batch]`; `None`: no condition).
    fn denoise(
        &self,
        x_t: Tensor<2>,
        t_index: Tensor<1, Int>,
        class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput;

    /// [`Self::denoise`] with every point at the same time index (as in sampling).
    /// Implementations may override it with something faster.
    fn denoise_at(
        &self,
        x_t: Tensor<2>,
        t_index: usize,
        class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        let [batch, _] = x_t.dims();
        let t = Tensor::<1, Int>::full([batch], t_index as i64, &x_t.device());
        self.denoise(x_t, t, class)
    }
}

/// A denoiser that can be trained: a [`Denoise`] that is also a burn [`Module`], so training,
/// the EMA and save/load work on any implementation (`ModuleDisplay` lets generic wrappers
/// derive `Module` too). Implemented for every such type.
pub trait Denoiser: Denoise + Module + ModuleDisplay {}

impl<T: Denoise + Module + ModuleDisplay> Denoiser for T {}
