//! An MLP denoiser for 2-D points: embeddings in, residual blocks, noise out.
//!
//! The shape follows tiny-diffusion, which learns the toy distributions well: each coordinate and
//! the timestep get sinusoidal features (high-frequency features of x let a small MLP draw sharp
//! shapes, see Tancik et al. 2020), they are concatenated, and residual blocks
//! `h + act(W h + b)` keep gradients healthy through depth.

use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation;
use serde::{Deserialize, Serialize};

use super::embedding::{TimeEmbeddingKind, sinusoidal_embedding};
use super::{Denoise, DenoiserOutput, Head, ModelVariance};
use crate::choice::choice_enum;
use crate::diffusion::Prediction;
use crate::error::{DdpmError, Result};

choice_enum! {
    /// Non-linearity of the hidden layers.
    pub enum Activation ("activation") {
        /// max(0, x).
        Relu = "relu",
        /// x * sigmoid(x) (a.k.a. swish).
        Silu = "silu",
        /// x * Phi(x), the Gaussian error linear unit.
        Gelu = "gelu",
        /// tanh(x).
        Tanh = "tanh",
    }
}

impl Activation {
    /// Apply the non-linearity. GELU and SiLU run as fused kernels on the CPU backends (see
    /// [`crate::backend::gelu`]); everywhere else, and for ReLU and tanh, burn's own ops.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::Silu => crate::backend::silu(x),
            Activation::Gelu => crate::backend::gelu(x),
            Activation::Tanh => activation::tanh(x),
        }
    }
}

choice_enum! {
    /// How the coordinates of x_t enter the network.
    pub enum InputEncoding ("input encoding") {
        /// Sinusoidal features of each coordinate (scaled by `input_scale`).
        Sinusoidal = "sinusoidal",
        /// The raw coordinates.
        Raw = "raw",
    }
}

/// Architecture of the MLP denoiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    /// Width of the hidden layers.
    pub hidden_size: usize,
    /// Number of residual blocks.
    pub depth: usize,
    /// Non-linearity.
    pub activation: Activation,
    /// How t enters the network.
    pub time_embedding: TimeEmbeddingKind,
    /// Number of features of each embedding (of t, and of each coordinate when encoded).
    pub embedding_size: usize,
    /// How x_t enters the network.
    pub input_encoding: InputEncoding,
    /// Frequency scale of the coordinate features: larger draws finer detail.
    pub input_scale: f64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden_size: 128,
            depth: 3,
            activation: Activation::Gelu,
            time_embedding: TimeEmbeddingKind::Sinusoidal,
            embedding_size: 128,
            input_encoding: InputEncoding::Sinusoidal,
            input_scale: 25.0,
        }
    }
}

impl MlpConfig {
    /// Check every field; `prefix` is the path of this section in the experiment config.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let field = |name: &str| format!("{prefix}{name}");
        if !(1..=8192).contains(&self.hidden_size) {
            return Err(DdpmError::invalid(
                &field("hidden_size"),
                self.hidden_size,
                "must be in 1..=8192",
            ));
        }
        if self.depth > 64 {
            return Err(DdpmError::invalid(
                &field("depth"),
                self.depth,
                "must be in 0..=64",
            ));
        }
        super::embedding::validate_embedding_size(&field("embedding_size"), self.embedding_size)?;
        if !(self.input_scale.is_finite() && self.input_scale > 0.0) {
            return Err(DdpmError::invalid(
                &field("input_scale"),
                self.input_scale,
                "must be finite and > 0",
            ));
        }
        Ok(())
    }

    /// Width of the concatenated input features.
    fn input_width(&self, head: Head) -> usize {
        let x = match self.input_encoding {
            InputEncoding::Sinusoidal => 2 * self.embedding_size,
            InputEncoding::Raw => 2,
        };
        let t = match self.time_embedding {
            TimeEmbeddingKind::None => 0,
            _ => self.embedding_size,
        };
        let class = if head.num_classes > 0 {
            self.embedding_size
        } else {
            0
        };
        x + t + class
    }

    /// Number of outputs per point: the 2-D prediction, plus 2 variance values when learned.
    pub fn output_width(&self, head: Head) -> usize {
        match head.variance {
            ModelVariance::Fixed => 2,
            ModelVariance::LearnedRange => 4,
        }
    }

    /// Build the network for a chain of `timesteps` steps, with burn's default initialisation.
    ///
    /// burn draws initial weights from the device's generator; use
    /// [`crate::rng::seeded`] to make them reproducible.
    pub fn init(&self, head: Head, timesteps: usize, device: &Device) -> MlpDenoiser {
        let hidden = self.hidden_size;
        MlpDenoiser {
            time_table: (self.time_embedding == TimeEmbeddingKind::Learned)
                .then(|| EmbeddingConfig::new(timesteps, self.embedding_size).init(device)),
            input: LinearConfig::new(self.input_width(head), hidden).init(device),
            blocks: (0..self.depth)
                .map(|_| LinearConfig::new(hidden, hidden).init(device))
                .collect(),
            output: LinearConfig::new(hidden, self.output_width(head)).init(device),
            class_table: (head.num_classes > 0).then(|| {
                EmbeddingConfig::new(head.num_classes + 1, self.embedding_size).init(device)
            }),
            config: self.clone(),
            head,
        }
    }
}

/// The MLP denoiser epsilon_theta(x_t, t) (or x0_theta, v_theta: see [`Prediction`]).
#[derive(Module, Debug)]
pub struct MlpDenoiser {
    /// Learned time embedding (only for [`TimeEmbeddingKind::Learned`]).
    time_table: Option<Embedding>,
    /// Features to hidden width.
    input: Linear,
    /// Residual blocks `h + act(W h + b)`.
    blocks: Vec<Linear>,
    /// Hidden width to the 2-D prediction.
    output: Linear,
    /// Learned class embedding, `num_classes + 1` rows, the last the null class (only for a
    /// conditional model). Declared last so an unconditional model's weights are drawn as before.
    class_table: Option<Embedding>,
    /// The architecture (not a parameter).
    #[module(skip)]
    config: MlpConfig,
    /// What the output means (not a parameter).
    #[module(skip)]
    head: Head,
}

impl MlpDenoiser {
    /// The architecture this network was built from.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// What its output means.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Split a raw output into the prediction and the learned variance values.
    fn split(&self, output: Tensor<2>) -> DenoiserOutput {
        let (value, variance) = match self.head.variance {
            ModelVariance::Fixed => (output, None),
            ModelVariance::LearnedRange => {
                (output.clone().narrow(1, 0, 2), Some(output.narrow(1, 2, 2)))
            }
        };
        DenoiserOutput {
            target: self.head.prediction,
            value,
            variance,
        }
    }

    /// The raw output for noisy points `x` (`[batch, 2]`) at time indices `t` (`[batch]`, in
    /// `0..T`): `[batch, 2]`, or `[batch, 4]` with a learned variance
    /// ([`MlpConfig::output_width`]). A conditional model reads the null class.
    pub fn forward(&self, x: Tensor<2>, t: Tensor<1, Int>) -> Tensor<2> {
        self.forward_class(x, t, None)
    }

    /// [`Self::forward`] for the classes `class` (`[batch]`, each in `0..=num_classes`, the last
    /// being the null class; `None`: the null class for all).
    pub fn forward_class(
        &self,
        x: Tensor<2>,
        t: Tensor<1, Int>,
        class: Option<Tensor<1, Int>>,
    ) -> Tensor<2> {
        let [batch, _] = x.dims();
        let time = self.time_features(t);
        let class = self.class_features(class, batch, &x.device());
        self.forward_features(x, time, class)
    }

    /// [`Self::forward`] with every point at the same timestep `t` (as in sampling): the time
    /// features are computed once and broadcast, instead of once per point.
    pub fn forward_at(&self, x: Tensor<2>, t: usize) -> Tensor<2> {
        self.forward_at_class(x, t, None)
    }

    /// [`Self::forward_at`] for the classes `class` (see [`Self::forward_class`]).
    ///
    /// The input layer `W [x; time; class] + b` is split by columns of its input: the time
    /// part `W_t time(t)` is one row for the whole batch, and the class part is a row of the
    /// projected table `E W_c` per point, so only the x features go through a batch-sized
    /// matmul (with the default widths, the time part is a third of the layer's work, saved;
    /// the same values up to float rounding, tested against [`Self::forward`]).
    pub fn forward_at_class(
        &self,
        x: Tensor<2>,
        t: usize,
        class: Option<Tensor<1, Int>>,
    ) -> Tensor<2> {
        let [batch, _] = x.dims();
        let device = x.device();
        let cfg = &self.config;
        let x_features = self.input_features(x);
        let weight = self.input.weight.val(); // [inputs, hidden]
        let [_, hidden] = weight.dims();
        let mut offset = x_features.dims()[1];
        let mut h = x_features.matmul(weight.clone().narrow(0, 0, offset));
        let one = Tensor::<1, Int>::from_ints([t as i64], &device);
        if let Some(time) = self.time_features(one) {
            let width = time.dims()[1];
            h = h + time.matmul(weight.clone().narrow(0, offset, width)); // [1, hidden]
            offset += width;
        }
        if let Some(table) = &self.class_table {
            let w_class = weight.narrow(0, offset, cfg.embedding_size);
            let class = self.classes_or_null(class, batch, &device);
            // Project the whole table when it has fewer rows than the batch, else the rows asked for.
            h = h + if self.head.num_classes < batch {
                table.weight.val().matmul(w_class).select(0, class)
            } else {
                table.weight.val().select(0, class).matmul(w_class)
            };
        }
        if let Some(bias) = &self.input.bias {
            h = h + bias.val().reshape([1, hidden]);
        }
        self.hidden_and_output(cfg.activation.apply(h))
    }

    /// The class input of a conditional model: the embedding rows of `class`, or of the null
    /// class when `None`; nothing for an unconditional model.
    fn class_features(
        &self,
        class: Option<Tensor<1, Int>>,
        batch: usize,
        device: &Device,
    ) -> Option<Tensor<2>> {
        let table = self.class_table.as_ref()?;
        let class = self.classes_or_null(class, batch, device);
        let rows = table.forward(class.unsqueeze_dim::<2>(1)); // [batch, 1, size]
        Some(rows.reshape([batch, self.config.embedding_size]))
    }

    /// `class`, or the null class (index `num_classes`) for all `batch` points.
    fn classes_or_null(
        &self,
        class: Option<Tensor<1, Int>>,
        batch: usize,
        device: &Device,
    ) -> Tensor<1, Int> {
        class.unwrap_or_else(|| {
            Tensor::<1, Int>::full([batch], self.head.num_classes as i64, device)
        })
    }

    /// The time input for `t` (`[batch]`): a learned row or sinusoidal features, or nothing
    /// for the ablation without time.
    fn time_features(&self, t: Tensor<1, Int>) -> Option<Tensor<2>> {
        let cfg = &self.config;
        match (&self.time_table, cfg.time_embedding) {
            (_, TimeEmbeddingKind::None) => None,
            (Some(table), _) => {
                let [batch] = t.dims();
                let rows = table.forward(t.unsqueeze_dim::<2>(1)); // [batch, 1, size]
                Some(rows.reshape([batch, cfg.embedding_size]))
            }
            (None, _) => Some(sinusoidal_embedding(
                t.float().unsqueeze_dim(1),
                cfg.embedding_size,
                1.0,
            )),
        }
    }

    fn forward_features(
        &self,
        x: Tensor<2>,
        time: Option<Tensor<2>>,
        class: Option<Tensor<2>>,
    ) -> Tensor<2> {
        let mut features = vec![self.input_features(x)];
        features.extend(time);
        features.extend(class);
        let h = self
            .config
            .activation
            .apply(self.input.forward(Tensor::cat(features, 1)));
        self.hidden_and_output(h)
    }

    /// The x input: sinusoidal features of each coordinate, or the coordinates themselves.
    fn input_features(&self, x: Tensor<2>) -> Tensor<2> {
        let cfg = &self.config;
        match cfg.input_encoding {
            InputEncoding::Sinusoidal => {
                sinusoidal_embedding(x, cfg.embedding_size, cfg.input_scale)
            }
            InputEncoding::Raw => x,
        }
    }

    /// The residual blocks and the output layer, from the first hidden activations.
    fn hidden_and_output(&self, mut h: Tensor<2>) -> Tensor<2> {
        for block in &self.blocks {
            h = h.clone() + self.config.activation.apply(block.forward(h));
        }
        self.output.forward(h)
    }
}

impl Denoise for MlpDenoiser {
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
        2
    }

    fn denoise(
        &self,
        x_t: Tensor<2>,
        t_index: Tensor<1, Int>,
        class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        self.split(self.forward_class(x_t, t_index, class))
    }

    /// The time features are computed once for the batch ([`MlpDenoiser::forward_at`]).
    fn denoise_at(
        &self,
        x_t: Tensor<2>,
        t_index: usize,
        class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        self.split(self.forward_at_class(x_t, t_index, class))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{NoiseSource, seeded};

    #[test]
    fn forward_at_one_timestep_equals_forward_with_that_timestep_everywhere() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let x = NoiseSource::new(4).normal([64, 2], &device);
        for kind in TimeEmbeddingKind::ALL {
            let config = MlpConfig {
                time_embedding: *kind,
                ..Default::default()
            };
            let model = seeded(&device, 3, || config.init(Head::default(), 100, &device));
            let t = 37;
            let full = model.forward(x.clone(), Tensor::<1, Int>::full([64], t as i64, &device));
            let once = model.forward_at(x.clone(), t);
            let err: f32 = (full - once).abs().max().into_scalar();
            assert!(err < 1e-5, "{kind}: {err}");
        }
        // with classes (each point its own, and the null class), every time embedding, raw
        // inputs, and more classes than points (the table is then not projected whole)
        let variants = TimeEmbeddingKind::ALL.iter().flat_map(|&time| {
            [
                (time, InputEncoding::Sinusoidal, 3),
                (time, InputEncoding::Raw, 100),
            ]
        });
        for (time, encoding, num_classes) in variants {
            let config = MlpConfig {
                time_embedding: time,
                input_encoding: encoding,
                ..Default::default()
            };
            let head = Head {
                num_classes,
                ..Head::default()
            };
            let model = seeded(&device, 3, || config.init(head, 100, &device));
            let class: Vec<i64> = (0..64).map(|i| i % 4).collect();
            let class = Tensor::<1, Int>::from_ints(class.as_slice(), &device);
            let t = Tensor::<1, Int>::full([64], 37, &device);
            for class in [Some(class), None] {
                let full = model.forward_class(x.clone(), t.clone(), class.clone());
                let once = model.forward_at_class(x.clone(), 37, class);
                let err: f32 = (full - once).abs().max().into_scalar();
                assert!(
                    err < 1e-5,
                    "{time}, {encoding}, {num_classes} classes: {err}"
                );
            }
        }
    }

    #[test]
    fn a_learned_variance_adds_two_outputs_that_predict_splits_off() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let x = NoiseSource::new(5).normal([7, 2], &device);
        for (variance, width) in [(ModelVariance::Fixed, 2), (ModelVariance::LearnedRange, 4)] {
            let config = MlpConfig::default();
            let head = Head {
                variance,
                ..Head::default()
            };
            assert_eq!(config.output_width(head), width);
            let model = seeded(&device, 3, || config.init(head, 100, &device));
            let raw = model.forward_at(x.clone(), 10);
            assert_eq!(raw.dims(), [7, width]);
            let out = model.denoise_at(x.clone(), 10, None);
            assert_eq!(out.target, Prediction::Epsilon);
            assert_eq!(model.learns_variance(), width == 4);
            assert_eq!(out.value.dims(), [7, 2]);
            assert_eq!(
                out.variance.as_ref().map(|v| v.dims()),
                (width == 4).then_some([7, 2])
            );
            // The prediction is the first two columns of the raw output.
            let err: f32 = (raw.narrow(1, 0, 2) - out.value).abs().max().into_scalar();
            assert_eq!(err, 0.0);
        }
    }

    #[test]
    fn outputs_keep_their_shape_with_and_without_classes_and_the_class_matters() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let x = NoiseSource::new(6).normal([7, 2], &device);
        let class = crate::model::class_tensor(&[0, 1, 2, 3, 0, 1, 4], &device);
        for k in [0usize, 4] {
            let head = Head {
                num_classes: k,
                ..Head::default()
            };
            let model = seeded(&device, 3, || MlpConfig::default().init(head, 100, &device));
            assert_eq!(model.num_classes(), k);
            let t = Tensor::<1, Int>::full([7], 10, &device);
            let given = (k > 0).then(|| class.clone());
            assert_eq!(
                model.denoise(x.clone(), t, given.clone()).value.dims(),
                [7, 2]
            );
            assert_eq!(model.denoise_at(x.clone(), 10, given).value.dims(), [7, 2]);
        }
        // A conditional model's prediction depends on the class; None is the null class (4).
        let head = Head {
            num_classes: 4,
            ..Head::default()
        };
        let model = seeded(&device, 3, || MlpConfig::default().init(head, 100, &device));
        let at = |c: Option<Tensor<1, Int>>| model.denoise_at(x.clone(), 10, c).value;
        let null = crate::model::class_tensor(&[4; 7], &device);
        let zeros = crate::model::class_tensor(&[0; 7], &device);
        let diff: f32 = (at(None) - at(Some(null))).abs().max().into_scalar();
        assert_eq!(diff, 0.0);
        let diff: f32 = (at(None) - at(Some(zeros))).abs().max().into_scalar();
        assert!(diff > 1e-4, "{diff}");
    }
}
