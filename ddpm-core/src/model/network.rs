//! The model section of an experiment: what every denoiser shares (its head: the target, the
//! variance, the classes) and which network computes it, as one config and one module.
//!
//! ```toml
//! [model]
//! prediction = "epsilon"     # the head, shared by every network
//! variance = "fixed"
//! num_classes = 0
//!
//! [model.network]            # which network, tagged by `kind`
//! kind = "mlp"               # or "unet"
//! hidden_size = 128
//! ```
//!
//! A new network is a variant of [`NetworkConfig`] and of [`Network`] (see the crate's
//! "adding a network" guide, `docs/adding-a-network.md`); nothing outside `model/` changes.

use std::path::Path;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::mlp::{MlpConfig, MlpDenoiser};
use super::unet::{UNet, UNetConfig};
use super::{Denoise, DenoiserOutput};
use crate::choice::choice_enum;
use crate::data::DataShape;
use crate::diffusion::Prediction;
use crate::error::{DdpmError, Result};
use crate::io::{MISMATCH, load_weights, save_model};

choice_enum! {
    /// Whether the network also predicts the variance of each reverse step.
    pub enum ModelVariance ("model variance") {
        /// No: sampling uses a fixed variance (`sampling.variance`: beta-tilde or beta).
        Fixed = "fixed",
        /// Yes, as Improved DDPM's `learned_range` (Nichol & Dhariwal 2021, eq. 15): more
        /// outputs v in about [-1, 1] interpolate log sigma^2 between log beta-tilde_t and log beta_t.
        LearnedRange = "learned_range",
    }
}

/// What a denoiser's output means, whatever network computes it: the target it predicts,
/// whether it also predicts the variance, and the classes it is conditioned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// What the output predicts: the noise, x_0 or the velocity v.
    pub prediction: Prediction,
    /// Fixed variance, or a learned one (more outputs, trained with the hybrid loss).
    pub variance: ModelVariance,
    /// Number of classes to condition on (0: unconditional). A conditional network learns one
    /// embedding row per class plus a null class (index `num_classes`) for classifier-free
    /// guidance; it must match the dataset's classes.
    pub num_classes: usize,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            prediction: Prediction::Epsilon,
            variance: ModelVariance::Fixed,
            num_classes: 0,
        }
    }
}

impl Head {
    /// Whether the network predicts a learned variance.
    pub fn learns_variance(&self) -> bool {
        self.variance == ModelVariance::LearnedRange
    }

    /// Check the fields; `prefix` is the path of the model section.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        if self.num_classes > 1000 {
            return Err(DdpmError::invalid(
                &format!("{prefix}num_classes"),
                self.num_classes,
                "must be in 0..=1000 (0: unconditional)",
            ));
        }
        Ok(())
    }
}

/// Which network, with its architecture. Tagged by `kind` in TOML and JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NetworkConfig {
    /// The MLP for 2-D points ([`MlpDenoiser`]).
    Mlp(MlpConfig),
    /// The U-Net for images ([`UNet`]).
    Unet(UNetConfig),
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig::Mlp(MlpConfig::default())
    }
}

impl NetworkConfig {
    /// `mlp` or `unet`, as in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            NetworkConfig::Mlp(_) => "mlp",
            NetworkConfig::Unet(_) => "unet",
        }
    }

    /// Whether this network can denoise examples of `shape`.
    pub fn accepts(&self, shape: DataShape) -> bool {
        matches!(
            (self, shape),
            (NetworkConfig::Mlp(_), DataShape::Points)
                | (NetworkConfig::Unet(_), DataShape::Image(_))
        )
    }
}

/// The model section: the head every network shares and the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// What the output predicts: the noise, x_0 or the velocity v.
    pub prediction: Prediction,
    /// Fixed variance, or a learned one (more outputs, trained with the hybrid loss).
    pub variance: ModelVariance,
    /// Number of classes to condition on (0: unconditional); see [`Head::num_classes`].
    pub num_classes: usize,
    /// The network and its architecture.
    pub network: NetworkConfig,
}

impl Default for ModelConfig {
    /// The MLP with the default head.
    fn default() -> Self {
        let head = Head::default();
        Self {
            prediction: head.prediction,
            variance: head.variance,
            num_classes: head.num_classes,
            network: NetworkConfig::default(),
        }
    }
}

impl ModelConfig {
    /// A model of `network` with the default head (predicts the noise, fixed variance,
    /// unconditional).
    pub fn new(network: NetworkConfig) -> Self {
        Self {
            network,
            ..Self::default()
        }
    }

    /// The shared head.
    pub fn head(&self) -> Head {
        Head {
            prediction: self.prediction,
            variance: self.variance,
            num_classes: self.num_classes,
        }
    }

    /// The MLP's architecture, if the network is the MLP.
    pub fn mlp(&self) -> Option<&MlpConfig> {
        match &self.network {
            NetworkConfig::Mlp(c) => Some(c),
            _ => None,
        }
    }

    /// The MLP's architecture to edit, if the network is the MLP.
    pub fn mlp_mut(&mut self) -> Option<&mut MlpConfig> {
        match &mut self.network {
            NetworkConfig::Mlp(c) => Some(c),
            _ => None,
        }
    }

    /// The U-Net's architecture, if the network is the U-Net.
    pub fn unet(&self) -> Option<&UNetConfig> {
        match &self.network {
            NetworkConfig::Unet(c) => Some(c),
            _ => None,
        }
    }

    /// The U-Net's architecture to edit, if the network is the U-Net.
    pub fn unet_mut(&mut self) -> Option<&mut UNetConfig> {
        match &mut self.network {
            NetworkConfig::Unet(c) => Some(c),
            _ => None,
        }
    }

    /// Check every field; `prefix` is the path of this section (`"model."`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        self.head().validate(prefix)?;
        let network = format!("{prefix}network.");
        match &self.network {
            NetworkConfig::Mlp(c) => c.validate(&network),
            NetworkConfig::Unet(c) => c.validate(&network),
        }
    }

    /// Check that the network can denoise examples of `shape` (the MLP takes points, the
    /// U-Net images of a size it can halve `channels.len() - 1` times).
    pub fn validate_for(&self, prefix: &str, shape: DataShape) -> Result<()> {
        if !self.network.accepts(shape) {
            return Err(DdpmError::invalid(
                &format!("{prefix}network.kind"),
                self.network.kind(),
                format!(
                    "cannot denoise {shape}: the MLP takes 2-D points (kind = \"mlp\"), the \
                     U-Net images (kind = \"unet\"); see configs/default.toml and configs/digits.toml"
                ),
            ));
        }
        if let (NetworkConfig::Unet(c), DataShape::Image(image)) = (&self.network, shape) {
            c.validate_shape(image)?;
        }
        Ok(())
    }

    /// Build the network for examples of `shape` and a chain of `timesteps` steps, with burn's
    /// default initialisation (wrap in [`crate::rng::seeded`] for reproducible weights).
    pub fn init(&self, shape: DataShape, timesteps: usize, device: &Device) -> Result<Network> {
        self.validate("model.")?;
        self.validate_for("model.", shape)?;
        let head = self.head();
        Ok(match (&self.network, shape) {
            (NetworkConfig::Mlp(c), _) => Network::Mlp(c.init(head, timesteps, device)),
            (NetworkConfig::Unet(c), DataShape::Image(image)) => {
                Network::Unet(c.init(head, image, device)?)
            }
            (NetworkConfig::Unet(_), DataShape::Points) => unreachable!("checked by validate_for"),
        })
    }

    /// Load weights saved by [`Network::save`] into the network this config describes for
    /// `shape` and `timesteps` (as in the run's `config.json`). A missing file, a file that is
    /// no complete record and weights of another architecture each give a
    /// [`DdpmError::Record`] that says which, with the fields the weights depend on.
    pub fn load(
        &self,
        shape: DataShape,
        timesteps: usize,
        path: &Path,
        device: &Device,
    ) -> Result<Network> {
        let loaded = match self.init(shape, timesteps, device)? {
            Network::Mlp(m) => load_weights(m, path).map(Network::Mlp),
            Network::Unet(u) => load_weights(u, path).map(Network::Unet),
        };
        loaded.map_err(|e| match e {
            DdpmError::Record { path, message } if message.starts_with(MISMATCH) => {
                DdpmError::Record {
                    path,
                    message: format!(
                        "{MISMATCH} ({}; diffusion.timesteps = {timesteps}); was it trained \
                         with another config? {}",
                        architecture(self),
                        &message[MISMATCH.len()..].trim_start_matches(": "),
                    ),
                }
            }
            other => other,
        })
    }

    /// One line for logs and tables: "MLP 128 wide x 3 deep, gelu, sinusoidal time embedding,
    /// predicts epsilon" or "U-Net [32, 64], predicts epsilon, 10 classes".
    pub fn describe(&self) -> String {
        let network = match &self.network {
            NetworkConfig::Mlp(m) => format!(
                "MLP {} wide x {} deep, {}, {} time embedding",
                m.hidden_size, m.depth, m.activation, m.time_embedding
            ),
            NetworkConfig::Unet(u) => format!(
                "U-Net {:?}{}",
                u.channels,
                if u.attention { " with attention" } else { "" }
            ),
        };
        let variance = match self.variance {
            ModelVariance::Fixed => String::new(),
            ModelVariance::LearnedRange => ", learned variance".to_string(),
        };
        format!("{network}, predicts {}{variance}", self.prediction)
    }
}

macro_rules! each {
    ($self:expr, $net:ident => $body:expr) => {
        match $self {
            Network::Mlp($net) => $body,
            Network::Unet($net) => $body,
        }
    };
}

/// The network a [`ModelConfig`] builds: one module type for the pipeline, the command, saving
/// and loading, whatever the architecture. Every method forwards to the network inside.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per run, never moved in a loop; burn's derive needs the modules inline
pub enum Network {
    /// The MLP.
    Mlp(MlpDenoiser),
    /// The U-Net.
    Unet(UNet),
}

impl Network {
    /// The MLP inside, if it is one.
    pub fn as_mlp(&self) -> Option<&MlpDenoiser> {
        match self {
            Network::Mlp(m) => Some(m),
            _ => None,
        }
    }

    /// The U-Net inside, if it is one.
    pub fn as_unet(&self) -> Option<&UNet> {
        match self {
            Network::Unet(u) => Some(u),
            _ => None,
        }
    }

    /// Save the weights of the network inside to `path` atomically ([`save_model`]); the
    /// architecture is read back from the run's config by [`ModelConfig::load`].
    pub fn save(&self, path: &Path) -> Result<()> {
        each!(self, n => save_model(n, path))
    }
}

/// The fields a saved network's weights depend on, as `field = value` pairs.
fn architecture(config: &ModelConfig) -> String {
    let network = match &config.network {
        NetworkConfig::Mlp(m) => format!(
            "model.network.kind = mlp, hidden_size = {}, depth = {}, embedding_size = {}, \
             time_embedding = {}",
            m.hidden_size, m.depth, m.embedding_size, m.time_embedding
        ),
        NetworkConfig::Unet(u) => format!(
            "model.network.kind = unet, channels = {:?}, blocks_per_level = {}, attention = {}, \
             embedding_size = {}",
            u.channels, u.blocks_per_level, u.attention, u.embedding_size
        ),
    };
    format!(
        "{network}; model.variance = {}, model.num_classes = {}",
        config.variance, config.num_classes
    )
}

impl From<MlpDenoiser> for Network {
    fn from(m: MlpDenoiser) -> Self {
        Network::Mlp(m)
    }
}

impl From<UNet> for Network {
    fn from(u: UNet) -> Self {
        Network::Unet(u)
    }
}

impl Denoise for Network {
    fn prediction(&self) -> Prediction {
        each!(self, n => n.prediction())
    }

    fn learns_variance(&self) -> bool {
        each!(self, n => n.learns_variance())
    }

    fn num_classes(&self) -> usize {
        each!(self, n => n.num_classes())
    }

    fn data_size(&self) -> usize {
        each!(self, n => n.data_size())
    }

    fn denoise(
        &self,
        x_t: Tensor<2>,
        t_index: Tensor<1, Int>,
        class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        each!(self, n => n.denoise(x_t, t_index, class))
    }

    fn denoise_at(
        &self,
        x_t: Tensor<2>,
        t_index: usize,
        class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        each!(self, n => n.denoise_at(x_t, t_index, class))
    }
}
