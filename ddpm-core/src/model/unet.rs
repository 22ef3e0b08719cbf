//! A small U-Net denoiser for images, in the shape of DDPM's (Ho et al. 2020, appendix B) and
//! improved-diffusion's: residual blocks with group normalisation, the time (and class)
//! embedding added inside every block, downsampling to a coarse resolution and back up, and skip
//! connections that hand each resolution's features to the matching step on the way up.
//!
//! ```text
//!  x_t ─ conv ─┬─ res ─┬─ down ─┬─ res ─┬─ … ─ res ─ [attention] ─ res ─ … ─┬─ res ─ up ─┬─ res ─ conv ─ ε
//!              └───────┴────────┴───────┴──────────── skips ────────────────┴────────────┘
//!  t, class ──▶ embedding ──▶ added to every res block
//! ```
//!
//! The library passes examples as rows (`[batch, channels * height * width]`, see
//! [`Denoise::data_size`]); the network reshapes them to `[batch, channels, height, width]`
//! and back, so the samplers and losses need not know they are images.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, Linear,
    LinearConfig, PaddingConfig2d,
    attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig},
};
use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use serde::{Deserialize, Serialize};

use super::embedding::sinusoidal_embedding;
use super::{Denoise, DenoiserOutput, Head, ModelVariance};
use crate::backend::{conv2d, silu};
use crate::data::ImageShape;
use crate::diffusion::Prediction;
use crate::error::{DdpmError, Result};

/// Architecture of the U-Net.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UNetConfig {
    /// Feature channels at each resolution, finest first; each level after the first halves
    /// the height and width (rounding up). `[32, 64]` on 8x8 images works at 8x8 and 4x4.
    pub channels: Vec<usize>,
    /// Residual blocks per resolution on the way down (one more on the way up, for the skip
    /// of the downsampling step).
    pub blocks_per_level: usize,
    /// Self-attention (burn's `MultiHeadAttention`) between the two middle residual blocks, at
    /// the coarsest resolution.
    pub attention: bool,
    /// Heads of that attention; must divide the last entry of `channels`.
    pub attention_heads: usize,
    /// Groups of each group normalisation; must divide every entry of `channels`.
    pub groups: usize,
    /// Dropout in each residual block and in the attention weights, while training.
    pub dropout: f64,
    /// Width of the time (and class) embedding added to every block.
    pub embedding_size: usize,
}

impl Default for UNetConfig {
    /// Sized for 8x8 digits on a laptop CPU: two resolutions, 32 and 64 channels, no attention.
    fn default() -> Self {
        Self {
            channels: vec![32, 64],
            blocks_per_level: 1,
            attention: false,
            attention_heads: 4,
            groups: 8,
            dropout: 0.0,
            embedding_size: 128,
        }
    }
}

impl UNetConfig {
    /// Check every field; `prefix` is the path of this section in the experiment config.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let field = |name: &str| format!("{prefix}{name}");
        if self.channels.is_empty() || self.channels.len() > 5 {
            return Err(DdpmError::invalid(
                &field("channels"),
                format!("{:?}", self.channels),
                "must list 1 to 5 widths, one per resolution",
            ));
        }
        if !(1..=8).contains(&self.groups) {
            return Err(DdpmError::invalid(
                &field("groups"),
                self.groups,
                "must be in 1..=8",
            ));
        }
        if let Some(&bad) = self
            .channels
            .iter()
            .find(|&&c| c == 0 || c > 1024 || !c.is_multiple_of(self.groups))
        {
            return Err(DdpmError::invalid(
                &field("channels"),
                bad,
                format!(
                    "each width must be in 1..=1024 and a multiple of groups ({})",
                    self.groups
                ),
            ));
        }
        if !(1..=8).contains(&self.blocks_per_level) {
            return Err(DdpmError::invalid(
                &field("blocks_per_level"),
                self.blocks_per_level,
                "must be in 1..=8",
            ));
        }
        let coarsest = *self.channels.last().expect("checked non-empty");
        if self.attention
            && (self.attention_heads == 0 || !coarsest.is_multiple_of(self.attention_heads))
        {
            return Err(DdpmError::invalid(
                &field("attention_heads"),
                self.attention_heads,
                format!("must be at least 1 and divide the coarsest width ({coarsest})"),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(DdpmError::invalid(
                &field("dropout"),
                self.dropout,
                "must be in [0, 1)",
            ));
        }
        super::embedding::validate_embedding_size(&field("embedding_size"), self.embedding_size)?;
        Ok(())
    }

    /// Check that `shape` suits this network: a positive size, and at least one pixel at the
    /// coarsest resolution.
    pub fn validate_shape(&self, shape: ImageShape) -> Result<()> {
        if !(1..=4).contains(&shape.channels) {
            return Err(DdpmError::invalid(
                "image channels",
                shape.channels,
                "must be in 1..=4",
            ));
        }
        let min = 1usize << (self.channels.len() - 1);
        for (name, size) in [("image height", shape.height), ("image width", shape.width)] {
            if !(min..=1024).contains(&size) {
                return Err(DdpmError::invalid(
                    name,
                    size,
                    format!(
                        "must be in {min}..=1024 for {} resolutions",
                        self.channels.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Build the network for images of `shape`, with burn's default initialisation (wrap in
    /// [`crate::rng::seeded`] for reproducible weights). Fails on a config or shape out of range.
    pub fn init(&self, head: Head, shape: ImageShape, device: &Device) -> Result<UNet> {
        self.validate("model.network.")?;
        self.validate_shape(shape)?;
        let emb = self.embedding_size;
        let block = |c_in: usize, c_out: usize| ResBlock::new(c_in, c_out, self, device);
        let conv3 = |c_in: usize, c_out: usize| conv(c_in, c_out, 1, device);

        let mut down = Vec::new();
        let mut skip_widths = vec![self.channels[0]];
        let mut width = self.channels[0];
        for (level, &c) in self.channels.iter().enumerate() {
            for _ in 0..self.blocks_per_level {
                down.push(DownStep::Block(block(width, c)));
                width = c;
                skip_widths.push(width);
            }
            if level + 1 < self.channels.len() {
                down.push(DownStep::Down(conv(width, width, 2, device)));
                skip_widths.push(width);
            }
        }
        let middle = (
            block(width, width),
            self.attention.then(|| Attention::new(width, self, device)),
            block(width, width),
        );
        let mut up = Vec::new();
        for (level, &c) in self.channels.iter().enumerate().rev() {
            for _ in 0..=self.blocks_per_level {
                let skip = skip_widths.pop().expect("one skip per down step");
                up.push(UpStep::Block(block(width + skip, c)));
                width = c;
            }
            if level > 0 {
                up.push(UpStep::Up(conv3(width, width)));
            }
        }
        let out_channels = match head.variance {
            ModelVariance::Fixed => shape.channels,
            ModelVariance::LearnedRange => 2 * shape.channels,
        };
        Ok(UNet {
            time_in: LinearConfig::new(emb, emb).init(device),
            time_out: LinearConfig::new(emb, emb).init(device),
            class_table: (head.num_classes > 0)
                .then(|| EmbeddingConfig::new(head.num_classes + 1, emb).init(device)),
            input: conv3(shape.channels, self.channels[0]),
            down,
            middle,
            up,
            out_norm: GroupNormConfig::new(self.groups, self.channels[0]).init(device),
            output: conv3(self.channels[0], out_channels),
            shape,
            config: self.clone(),
            head,
        })
    }
}

/// A 3x3 convolution, padding 1, with the given stride (2 halves the size, rounding up).
fn conv(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// `GroupNorm -> SiLU -> conv -> + embedding -> GroupNorm -> SiLU -> dropout -> conv`, plus the
/// input (through a 1x1 convolution when the width changes).
#[derive(Module, Debug)]
struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    /// The embedding, projected to this block's width, added to every pixel.
    embedding: Linear,
    norm2: GroupNorm,
    dropout: Dropout,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl ResBlock {
    fn new(c_in: usize, c_out: usize, config: &UNetConfig, device: &Device) -> Self {
        Self {
            norm1: GroupNormConfig::new(config.groups, c_in).init(device),
            conv1: conv(c_in, c_out, 1, device),
            embedding: LinearConfig::new(config.embedding_size, c_out).init(device),
            norm2: GroupNormConfig::new(config.groups, c_out).init(device),
            dropout: DropoutConfig::new(config.dropout).init(),
            conv2: conv(c_out, c_out, 1, device),
            shortcut: (c_in != c_out)
                .then(|| Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)),
        }
    }

    fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = conv2d(&self.conv1, silu(self.norm1.forward(x.clone())));
        let [batch, width] = [h.dims()[0], h.dims()[1]];
        let h = h + self
            .embedding
            .forward(silu(emb))
            .reshape([batch, width, 1, 1]);
        let h = conv2d(
            &self.conv2,
            self.dropout.forward(silu(self.norm2.forward(h))),
        );
        let skip = match &self.shortcut {
            Some(project) => conv2d(project, x),
            None => x,
        };
        skip + h
    }
}

/// Self-attention over the pixels of a feature map, with a residual connection.
#[derive(Module, Debug)]
struct Attention {
    norm: GroupNorm,
    attention: MultiHeadAttention,
}

impl Attention {
    fn new(width: usize, config: &UNetConfig, device: &Device) -> Self {
        Self {
            norm: GroupNormConfig::new(config.groups, width).init(device),
            attention: MultiHeadAttentionConfig::new(width, config.attention_heads)
                .with_dropout(config.dropout)
                .init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, width, height, w] = x.dims();
        // [batch, width, h, w] -> [batch, h * w, width]: one token per pixel
        let tokens = self
            .norm
            .forward(x.clone())
            .reshape([batch, width, height * w])
            .swap_dims(1, 2);
        let out = self
            .attention
            .forward(MhaInput::self_attn(tokens))
            .context
            .swap_dims(1, 2)
            .reshape([batch, width, height, w]);
        x + out
    }
}

/// One step down: a residual block, or a strided convolution to half the size.
// A handful per network, built once: the size difference costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
enum DownStep {
    Block(ResBlock),
    Down(Conv2d),
}

/// One step up: a residual block on the features and a skip, or nearest-neighbour upsampling
/// to the next skip's size followed by a convolution.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
enum UpStep {
    Block(ResBlock),
    Up(Conv2d),
}

/// The U-Net denoiser epsilon_theta(x_t, t[, class]) (or x0_theta, v_theta: see [`Prediction`]).
#[derive(Module, Debug)]
pub struct UNet {
    /// The sinusoidal features of t through `Linear -> SiLU -> Linear`.
    time_in: Linear,
    time_out: Linear,
    /// Learned class embedding, added to the time embedding (conditional models only).
    class_table: Option<Embedding>,
    input: Conv2d,
    down: Vec<DownStep>,
    middle: (ResBlock, Option<Attention>, ResBlock),
    up: Vec<UpStep>,
    out_norm: GroupNorm,
    output: Conv2d,
    /// The image shape (not a parameter).
    #[module(skip)]
    shape: ImageShape,
    /// The architecture (not a parameter).
    #[module(skip)]
    config: UNetConfig,
    /// What the output means (not a parameter).
    #[module(skip)]
    head: Head,
}

impl UNet {
    /// The architecture this network was built from.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// What its output means.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The shape of the images it denoises.
    pub fn shape(&self) -> ImageShape {
        self.shape
    }

    /// The time (plus class) embedding, `[batch, embedding_size]`.
    fn embedding(&self, t: Tensor<1, Int>, class: Option<Tensor<1, Int>>) -> Tensor<2> {
        let [batch] = t.dims();
        let device = t.device();
        let size = self.config.embedding_size;
        let time = sinusoidal_embedding(t.float().unsqueeze_dim(1), size, 1.0);
        let emb = self.time_out.forward(silu(self.time_in.forward(time)));
        match &self.class_table {
            None => emb,
            Some(table) => {
                let class = class.unwrap_or_else(|| {
                    Tensor::<1, Int>::full([batch], self.head.num_classes as i64, &device)
                });
                emb + table
                    .forward(class.unsqueeze_dim::<2>(1))
                    .reshape([batch, size])
            }
        }
    }

    /// The raw output for images `x` (`[batch, channels, height, width]`) at time indices `t`
    /// (`[batch]`) and classes `class` (`None`: the null class): `[batch, channels, height,
    /// width]`, with twice the channels for a learned variance.
    pub fn forward(
        &self,
        x: Tensor<4>,
        t: Tensor<1, Int>,
        class: Option<Tensor<1, Int>>,
    ) -> Tensor<4> {
        let emb = self.embedding(t, class);
        let mut h = conv2d(&self.input, x);
        let mut skips = vec![h.clone()];
        for step in &self.down {
            h = match step {
                DownStep::Block(block) => block.forward(h, emb.clone()),
                DownStep::Down(conv) => conv2d(conv, h),
            };
            skips.push(h.clone());
        }
        let (first, attention, second) = &self.middle;
        h = first.forward(h, emb.clone());
        if let Some(attention) = attention {
            h = attention.forward(h);
        }
        h = second.forward(h, emb.clone());
        for step in &self.up {
            h = match step {
                UpStep::Block(block) => {
                    let skip = skips.pop().expect("one skip per up block");
                    block.forward(Tensor::cat(vec![h, skip], 1), emb.clone())
                }
                UpStep::Up(conv) => {
                    // to the size of the skip this level joins (7 -> 14 and 4 -> 7 alike)
                    let [_, _, height, width] = skips.last().expect("a skip remains").dims();
                    let options = InterpolateOptions::new(InterpolateMode::Nearest)
                        .with_output_size([height, width]);
                    conv2d(conv, interpolate(h, options))
                }
            };
        }
        conv2d(&self.output, silu(self.out_norm.forward(h)))
    }
}

impl Denoise for UNet {
    fn prediction(&self) -> Prediction {
        self.head.prediction
    }

    fn learns_variance(&self) -> bool {
        self.head.variance == ModelVariance::LearnedRange
    }

    fn num_classes(&self) -> usize {
        self.head.num_classes
    }

    fn data_size(&self) -> usize {
        self.shape.size()
    }

    fn denoise(
        &self,
        x_t: Tensor<2>,
        t_index: Tensor<1, Int>,
        class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        let [batch, _] = x_t.dims();
        let channels = self.shape.channels;
        let out = self.forward(self.shape.unflatten(x_t), t_index, class);
        let size = self.shape.size();
        let value = out.clone().narrow(1, 0, channels).reshape([batch, size]);
        let variance = self
            .learns_variance()
            .then(|| out.narrow(1, channels, channels).reshape([batch, size]));
        DenoiserOutput {
            target: self.head.prediction,
            value,
            variance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::NoiseSource;

    fn device() -> Device {
        crate::backend::Backend::default_cpu().device().unwrap()
    }

    #[test]
    fn output_has_the_input_shape_for_every_image_size_with_and_without_classes() {
        let device = device();
        for (shape, channels, attention) in [
            (ImageShape::new(1, 8, 8), vec![16, 32], false),
            (ImageShape::new(1, 28, 28), vec![16, 32, 32], true),
            (ImageShape::new(3, 32, 32), vec![16, 32, 32], true),
            (ImageShape::new(1, 32, 32), vec![8], false),
        ] {
            for (classes, variance) in
                [(0, ModelVariance::Fixed), (10, ModelVariance::LearnedRange)]
            {
                let config = UNetConfig {
                    channels: channels.clone(),
                    attention,
                    embedding_size: 32,
                    ..UNetConfig::default()
                };
                let head = Head {
                    num_classes: classes,
                    variance,
                    ..Head::default()
                };
                let model = config.init(head, shape, &device).unwrap();
                assert_eq!(model.data_size(), shape.size());
                let x = NoiseSource::new(1).normal([3, shape.size()], &device);
                let t = Tensor::<1, Int>::from_ints([0, 5, 9], &device);
                let class = (classes > 0).then(|| Tensor::<1, Int>::from_ints([0, 3, 10], &device));
                let out = model.denoise(x.clone(), t, class);
                assert_eq!(out.value.dims(), [3, shape.size()], "{shape} {channels:?}");
                assert_eq!(
                    out.variance.map(|v| v.dims()),
                    (variance == ModelVariance::LearnedRange).then_some([3, shape.size()])
                );
                let at = model.denoise_at(x, 4, None).value;
                assert_eq!(at.dims(), [3, shape.size()]);
            }
        }
    }

    #[test]
    fn time_and_class_change_the_output() {
        let device = device();
        let config = UNetConfig {
            channels: vec![8, 16],
            embedding_size: 16,
            ..UNetConfig::default()
        };
        let head = Head {
            num_classes: 3,
            ..Head::default()
        };
        let model = crate::rng::seeded(&device, 3, || {
            config
                .init(head, ImageShape::new(1, 8, 8), &device)
                .unwrap()
        });
        let x = NoiseSource::new(2).normal([2, 64], &device);
        let read = |t: usize, class: i64| -> Vec<f32> {
            let class = Tensor::<1, Int>::from_ints([class, class], &device);
            model
                .denoise_at(x.clone(), t, Some(class))
                .value
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let base = read(10, 0);
        let differs = |other: Vec<f32>| {
            base.iter()
                .zip(&other)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max)
                > 1e-4
        };
        assert!(differs(read(500, 0)), "time must reach the output");
        assert!(differs(read(10, 2)), "class must reach the output");
        assert!(!differs(read(10, 0)), "same input, same output");
    }

    #[test]
    fn bad_configs_and_shapes_name_the_field() {
        let device = device();
        let shape = ImageShape::new(1, 8, 8);
        let cases: [(UNetConfig, &str); 5] = [
            (
                UNetConfig {
                    channels: vec![],
                    ..UNetConfig::default()
                },
                "model.network.channels",
            ),
            (
                UNetConfig {
                    channels: vec![12, 64],
                    ..UNetConfig::default()
                },
                "model.network.channels",
            ),
            (
                UNetConfig {
                    attention: true,
                    attention_heads: 3,
                    ..UNetConfig::default()
                },
                "model.network.attention_heads",
            ),
            (
                UNetConfig {
                    dropout: 1.0,
                    ..UNetConfig::default()
                },
                "model.network.dropout",
            ),
            (
                UNetConfig {
                    embedding_size: 7,
                    ..UNetConfig::default()
                },
                "model.network.embedding_size",
            ),
        ];
        for (config, field) in cases {
            let err = config
                .init(Head::default(), shape, &device)
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{err}");
        }
        let deep = UNetConfig {
            channels: vec![8, 8, 8, 8, 8],
            ..UNetConfig::default()
        };
        let err = deep
            .init(Head::default(), shape, &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("image height") && err.contains("16..=1024"),
            "{err}"
        );
        assert!(
            deep.init(Head::default(), ImageShape::new(1, 16, 16), &device)
                .is_ok()
        );
    }
}
