//! The training loop: burn's Adam, shuffled mini-batches, the loss of [`crate::loss`], optional EMA of the weights,
//! a loss history, and atomic save/load of the trained model.

use std::path::Path;

use burn::grad_clipping::GradientClippingConfig;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::choice::choice_enum;
use crate::data::{DataShape, Dataset2d, ImageSet};
use crate::error::{DdpmError, Result};
pub use crate::io::{load_weights, save_model};
use crate::loss::{LossWeighting, Objective, training_loss};
use crate::model::{Denoiser, ModelConfig, Network};
use crate::rng::NoiseSource;
use crate::schedule::NoiseSchedule;

choice_enum! {
    /// How the learning rate moves over training.
    pub enum LrSchedule ("learning-rate schedule") {
        /// The same rate throughout.
        Constant = "constant",
        /// Cosine annealing from `learning_rate` to zero over all steps (burn's scheduler).
        Cosine = "cosine",
    }
}

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Points per optimizer step.
    pub batch_size: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Adam's epsilon, added to the root of the second moment before dividing: burn's default
    /// 1e-5, which this library keeps (PyTorch's default is 1e-8; docs/experiments.md compares
    /// the two on the digits).
    pub adam_epsilon: f64,
    /// Learning-rate schedule.
    pub lr_schedule: LrSchedule,
    /// Decay of the exponential moving average of the weights used for sampling (e.g. 0.995);
    /// 0 samples with the last weights (an average with decay 0 is the last weights).
    pub ema_decay: f64,
    /// Clip the L2 norm of each parameter tensor's gradient to this value (burn's
    /// `GradientClippingConfig::Norm`, which clips per tensor, where PyTorch's
    /// `clip_grad_norm_` clips the norm of all gradients together); 0 leaves gradients as
    /// they are.
    pub grad_clip: f32,
    /// How each timestep's squared error is weighted.
    pub weighting: LossWeighting,
    /// gamma of min-SNR-gamma weighting (Hang et al. use 5); ignored by `simple`.
    pub min_snr_gamma: f64,
    /// lambda of the hybrid loss L_simple + lambda L_vlb that trains a learned variance
    /// (Nichol & Dhariwal use 0.001); ignored when the variance is fixed.
    pub vlb_weight: f64,
    /// Share of a conditional model's training labels replaced by the null class, so that one
    /// network also learns the unconditional prediction classifier-free guidance needs (Ho &
    /// Salimans 2022 use 0.1-0.2); ignored by an unconditional model.
    pub label_dropout: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        let objective = Objective::default();
        Self {
            epochs: 200,
            batch_size: 128,
            learning_rate: 1e-3,
            adam_epsilon: 1e-5,
            lr_schedule: LrSchedule::Constant,
            ema_decay: 0.995,
            grad_clip: 1.0,
            weighting: objective.weighting,
            min_snr_gamma: objective.min_snr_gamma,
            vlb_weight: objective.vlb_weight,
            label_dropout: 0.1,
        }
    }
}

impl TrainConfig {
    /// The loss's own knobs: weighting, min-SNR's gamma and the hybrid loss's lambda.
    pub fn objective(&self) -> Objective {
        Objective {
            weighting: self.weighting,
            min_snr_gamma: self.min_snr_gamma,
            vlb_weight: self.vlb_weight,
        }
    }

    /// Check every field; `prefix` is the path of this section in the experiment config.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let field = |name: &str| format!("{prefix}{name}");
        if !(1..=100_000).contains(&self.epochs) {
            return Err(DdpmError::invalid(
                &field("epochs"),
                self.epochs,
                "must be in 1..=100000",
            ));
        }
        if !(1..=1_000_000).contains(&self.batch_size) {
            return Err(DdpmError::invalid(
                &field("batch_size"),
                self.batch_size,
                "must be in 1..=1000000",
            ));
        }
        if !(self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.learning_rate <= 1.0)
        {
            return Err(DdpmError::invalid(
                &field("learning_rate"),
                self.learning_rate,
                "must be finite and in (0, 1]",
            ));
        }
        if !(self.adam_epsilon.is_finite() && self.adam_epsilon > 0.0 && self.adam_epsilon <= 1.0) {
            return Err(DdpmError::invalid(
                &field("adam_epsilon"),
                self.adam_epsilon,
                "must be finite and in (0, 1]",
            ));
        }
        if !(self.ema_decay.is_finite() && (0.0..1.0).contains(&self.ema_decay)) {
            return Err(DdpmError::invalid(
                &field("ema_decay"),
                self.ema_decay,
                "must be in [0, 1); 0 disables the average",
            ));
        }
        if !(self.grad_clip.is_finite() && self.grad_clip >= 0.0) {
            return Err(DdpmError::invalid(
                &field("grad_clip"),
                self.grad_clip,
                "must be finite and >= 0; 0 disables clipping",
            ));
        }
        if !(self.min_snr_gamma.is_finite() && self.min_snr_gamma > 0.0) {
            return Err(DdpmError::invalid(
                &field("min_snr_gamma"),
                self.min_snr_gamma,
                "must be finite and > 0",
            ));
        }
        if !(self.label_dropout.is_finite() && (0.0..=1.0).contains(&self.label_dropout)) {
            return Err(DdpmError::invalid(
                &field("label_dropout"),
                self.label_dropout,
                "must be in [0, 1] (the share of labels replaced by the null class)",
            ));
        }
        if !(self.vlb_weight.is_finite() && (0.0..=1.0).contains(&self.vlb_weight)) {
            return Err(DdpmError::invalid(
                &field("vlb_weight"),
                self.vlb_weight,
                "must be in [0, 1]",
            ));
        }
        Ok(())
    }
}

/// Losses recorded during training.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossHistory {
    /// The training loss of every optimizer step (L_simple, or as configured).
    pub per_step: Vec<f32>,
    /// Mean training loss of each epoch.
    pub per_epoch: Vec<f32>,
}

/// What a training run produces.
#[derive(Debug, Clone)]
pub struct Trained<M> {
    /// The network to sample with, on the non-autodiff device: the EMA weights when
    /// `ema_decay > 0`, the last weights otherwise.
    pub model: M,
    /// The losses along the way.
    pub history: LossHistory,
}

/// Progress events of a training run (the command shows a progress bar, a notebook a line now
/// and then, a test nothing).
pub trait TrainObserver {
    /// Training is about to start, with this many optimizer steps in total.
    fn on_start(&mut self, _total_steps: usize) {}
    /// One optimizer step is done.
    fn on_step(&mut self, _step: usize, _loss: f32) {}
    /// One epoch is done, with its mean loss.
    fn on_epoch(&mut self, _epoch: usize, _epochs: usize, _mean_loss: f32) {}
    /// Training finished.
    fn on_end(&mut self) {}
}

/// An observer that ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl TrainObserver for Silent {}

/// Prints one line every `every` epochs (for notebooks, where progress bars do not render).
#[derive(Debug, Clone, Copy)]
pub struct PrintEvery(pub usize);

impl TrainObserver for PrintEvery {
    fn on_epoch(&mut self, epoch: usize, epochs: usize, mean_loss: f32) {
        if (epoch + 1).is_multiple_of(self.0.max(1)) || epoch + 1 == epochs {
            println!("epoch {:>4}/{epochs}  loss {mean_loss:.4}", epoch + 1);
        }
    }
}

/// What training reads: labelled examples, handed out as mini-batch tensors. Implemented for
/// 2-D point clouds ([`Dataset2d`]) and images ([`ImageSet`], scaled to [-1, 1] and flattened).
pub trait TrainingData {
    /// A name for messages (the dataset's).
    fn name(&self) -> String;
    /// Number of examples.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Values per example: 2 for a point, `channels * height * width` for an image.
    fn example_size(&self) -> usize;
    /// Number of classes the labels come from.
    fn num_classes(&self) -> usize;
    /// The class of example `i`.
    fn label(&self, i: usize) -> usize;
    /// The examples at `indices` as a `[indices.len(), example_size]` tensor.
    fn batch(&self, indices: &[usize], device: &Device) -> Tensor<2>;
}

impl TrainingData for Dataset2d {
    fn name(&self) -> String {
        self.kind.to_string()
    }
    fn len(&self) -> usize {
        self.points.len()
    }
    fn example_size(&self) -> usize {
        2
    }
    fn num_classes(&self) -> usize {
        Dataset2d::num_classes(self)
    }
    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }
    fn batch(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        Dataset2d::batch(self, indices, device)
    }
}

impl TrainingData for ImageSet {
    fn name(&self) -> String {
        format!("{}x{}x{} images", self.channels, self.height, self.width)
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn example_size(&self) -> usize {
        self.image_size()
    }
    fn num_classes(&self) -> usize {
        self.num_classes
    }
    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }
    fn batch(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        ImageSet::batch(self, indices, device)
    }
}

/// Train `model` on `data` with the loss of [`training_loss`] (L_simple by default).
///
/// `device` must have autodiff enabled (`device.autodiff()`); the returned model lives on the
/// same device without autodiff. Every random draw (batch order, timesteps, noise) comes from
/// `seed`. Stops with [`DdpmError::Diverged`] as soon as the loss is NaN or infinite.
pub fn train<M: Denoiser, D: TrainingData + ?Sized>(
    model: M,
    schedule: &NoiseSchedule,
    data: &D,
    config: &TrainConfig,
    seed: u64,
    device: &Device,
    observer: &mut dyn TrainObserver,
) -> Result<Trained<M>> {
    config.validate("train.")?;
    if data.is_empty() {
        return Err(DdpmError::InvalidInput {
            field: "data",
            message: "the dataset is empty".into(),
        });
    }
    if model.data_size() != data.example_size() {
        return Err(DdpmError::invalid(
            "model",
            format!("{} values per example", model.data_size()),
            format!(
                "must match the data: {} has {} values per example",
                data.name(),
                data.example_size()
            ),
        ));
    }
    if Module::num_params(&model) == 0 {
        return Err(DdpmError::InvalidInput {
            field: "model",
            message: "the denoiser has no parameters to train".into(),
        });
    }
    let device = device.clone().autodiff();
    let mut model = model.to_device(&device).train();
    let mut optimizer = AdamConfig::new()
        .with_epsilon(config.adam_epsilon as f32)
        .with_grad_clipping(
            (config.grad_clip > 0.0).then_some(GradientClippingConfig::Norm(config.grad_clip)),
        )
        .init();
    let steps_per_epoch = data.len().div_ceil(config.batch_size);
    let total_steps = steps_per_epoch * config.epochs;
    let learning_rates = learning_rates(config, total_steps)?;
    let mut ema = (config.ema_decay > 0.0).then(|| Ema::new(&model, config.ema_decay));
    let mut rng = NoiseSource::new(seed);
    let objective = config.objective();
    let classes = model.num_classes();
    let conditional = classes > 0;
    if conditional && classes != data.num_classes() {
        return Err(DdpmError::invalid(
            "model.num_classes",
            classes,
            format!(
                "must match the data: {} has {} classes",
                data.name(),
                data.num_classes()
            ),
        ));
    }
    let mut history = LossHistory::default();
    observer.on_start(total_steps);

    for epoch in 0..config.epochs {
        let order = rng.permutation(data.len());
        let mut epoch_loss = 0.0f64;
        for (i, batch) in order.chunks(config.batch_size).enumerate() {
            // 1. a mini-batch of data, a random timestep and fresh noise per point
            let x0 = data.batch(batch, &device);
            let t = rng.timesteps(batch.len(), schedule.timesteps());
            let noise = rng.normal([batch.len(), data.example_size()], &device);
            let class = conditional.then(|| {
                let labels: Vec<usize> = batch.iter().map(|&i| data.label(i)).collect();
                let kept = label_dropout(&labels, config.label_dropout, classes, &mut rng);
                crate::model::class_tensor(&kept, &device)
            });

            // 2. L_simple = |eps - eps_theta(x_t, t)|^2 (Ho et al. eq. 14), or its x_0 / v
            //    form, weighted as configured, plus lambda L_vlb for a learned variance
            let loss = training_loss(&model, schedule, x0, &t, noise, class, &objective).total;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let value: f32 = loss.into_scalar();
            let step = history.per_step.len();
            if !value.is_finite() {
                return Err(DdpmError::Diverged {
                    epoch,
                    step,
                    loss: value,
                });
            }

            // 3. one Adam step, then the moving average of the weights
            model = optimizer.step(learning_rates[step], model, grads);
            if let Some(ema) = ema.as_mut() {
                ema.update(&model);
            }
            history.per_step.push(value);
            epoch_loss += f64::from(value);
            observer.on_step(step, value);
            debug_assert!(i < steps_per_epoch);
        }
        let mean = (epoch_loss / steps_per_epoch as f64) as f32;
        history.per_epoch.push(mean);
        observer.on_epoch(epoch, config.epochs, mean);
    }
    observer.on_end();

    let model = match ema {
        Some(ema) => ema.into_model(),
        None => model.valid(),
    };
    Ok(Trained { model, history })
}

/// The learning rate of each of `total_steps` optimizer steps: `learning_rate` throughout, or
/// burn's cosine annealing from it towards 0, `lr_k = lr (1 + cos(pi k / total_steps)) / 2`
/// for step k = 0, 1, ... (full rate first, half-way at the middle).
pub fn learning_rates(config: &TrainConfig, total_steps: usize) -> Result<Vec<f64>> {
    match config.lr_schedule {
        LrSchedule::Constant => Ok(vec![config.learning_rate; total_steps]),
        LrSchedule::Cosine => {
            let mut scheduler =
                CosineAnnealingLrSchedulerConfig::new(config.learning_rate, total_steps.max(1))
                    .init()
                    .map_err(|e| {
                        DdpmError::invalid("train.learning_rate", config.learning_rate, e)
                    })?;
            Ok((0..total_steps).map(|_| scheduler.step().base()).collect())
        }
    }
}

/// Classifier-free guidance's label dropout: each of `labels` is replaced by the null class
/// `null` with probability `p` (one uniform draw per label from `rng`).
pub fn label_dropout(labels: &[usize], p: f64, null: usize, rng: &mut NoiseSource) -> Vec<usize> {
    labels
        .iter()
        .zip(rng.uniform_vec(labels.len()))
        .map(|(&label, u)| if u < p { null } else { label })
        .collect()
}

/// Exponential moving average of a model's weights: `ema = decay * ema + (1 - decay) * w`,
/// kept on the plain (non-autodiff) device.
#[derive(Debug, Clone)]
pub struct Ema<M> {
    model: M,
    decay: f64,
}

impl<M: Module> Ema<M> {
    /// Start the average at the current weights of `model`.
    pub fn new(model: &M, decay: f64) -> Self {
        Self {
            model: model.valid(),
            decay,
        }
    }

    /// Blend the current weights of `model` into the average.
    pub fn update(&mut self, model: &M) {
        let mut collect = CollectParams::default();
        model.visit(&mut collect);
        let mut blend = BlendParams {
            sources: collect.tensors.into_iter(),
            decay: self.decay,
        };
        self.model = self.model.clone().map(&mut blend);
    }

    /// The averaged model.
    pub fn into_model(self) -> M {
        self.model
    }
}

/// Gathers every float parameter, flattened and detached from autodiff, in visiting order.
#[derive(Default)]
struct CollectParams {
    tensors: Vec<Tensor<1>>,
}

impl ModuleVisitor for CollectParams {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().without_autodiff();
        let n = value.shape().num_elements();
        self.tensors.push(value.reshape([n]));
    }
}

/// Blends collected tensors into a module's parameters, in the same visiting order.
struct BlendParams {
    sources: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for BlendParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let source = self
            .sources
            .next()
            .expect("EMA and model have the same parameters");
        let decay = self.decay;
        param.map(|avg| {
            let shape = avg.shape();
            avg.mul_scalar(decay) + source.reshape(shape).mul_scalar(1.0 - decay)
        })
    }
}

/// Load weights saved by [`save_network`] into the network `config` describes, built for
/// examples of `shape` and a chain of `timesteps` steps (all three as in the run's
/// `config.json`): [`ModelConfig::load`].
///
/// A missing file, a file that is not a complete burnpack record (truncated, or something else
/// altogether) and weights of another architecture each give a [`DdpmError::Record`] that says
/// which, never a panic.
pub fn load_model(
    config: &ModelConfig,
    shape: DataShape,
    timesteps: usize,
    path: &Path,
    device: &Device,
) -> Result<Network> {
    config.load(shape, timesteps, path, device)
}

/// Save a [`Network`] atomically ([`Network::save`]); [`load_model`] reads it back.
pub fn save_network(network: &Network, path: &Path) -> Result<()> {
    network.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExperimentConfig;

    /// One parameter vector, to follow an average by hand.
    #[derive(Module, Debug)]
    struct Weights {
        w: Param<Tensor<1>>,
    }

    fn weights(values: &[f32], device: &Device) -> Weights {
        Weights {
            w: Param::from_tensor(Tensor::from_floats(values, device)),
        }
    }

    /// Every float parameter of `model`, flattened, in visiting order.
    fn parameters<M: Module>(model: &M) -> Vec<Vec<f32>> {
        let mut collect = CollectParams::default();
        model.visit(&mut collect);
        collect
            .tensors
            .into_iter()
            .map(|t| t.into_data().try_to_vec::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn ema_equals_its_closed_form_over_a_known_sequence() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let decay = 0.9;
        let sequence = [
            [1.0f32, -2.0],
            [2.0, 0.0],
            [-3.0, 1.0],
            [0.5, 4.0],
            [4.0, -1.0],
        ];
        let mut ema = Ema::new(&weights(&sequence[0], &device), decay);
        for w in &sequence[1..] {
            ema.update(&weights(w, &device));
        }
        // ema_k = d^k w_0 + (1 - d) sum_{i=1..k} d^(k-i) w_i
        let k = sequence.len() - 1;
        let average = parameters(&ema.into_model());
        for j in 0..2 {
            let expected = decay.powi(k as i32) * f64::from(sequence[0][j])
                + (1..=k)
                    .map(|i| (1.0 - decay) * decay.powi((k - i) as i32) * f64::from(sequence[i][j]))
                    .sum::<f64>();
            let got = f64::from(average[0][j]);
            assert!((got - expected).abs() < 1e-6, "{j}: {got} vs {expected}");
        }
    }

    /// Adam's first update of a weight is `lr g / (|g| + eps)` (bias-corrected), so a gradient
    /// clipped to norm c moves each tensor by at most `lr c / eps`, where unclipped gradients
    /// move each coordinate by about lr.
    #[test]
    fn gradient_clipping_bounds_the_update() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let mut config = ExperimentConfig::default();
        config.data.n_points = 64;
        config.diffusion.timesteps = 100;
        config.train.epochs = 1;
        config.train.batch_size = 64;
        config.train.ema_decay = 0.0;
        let schedule = config.diffusion.init().unwrap();
        let data = config.data.init(0).unwrap();
        let init = || {
            crate::rng::seeded(&device, 0, || {
                config.model.init(DataShape::Points, 100, &device).unwrap()
            })
        };
        let before = parameters(&init());
        let moved = |clip: f32| -> Vec<f64> {
            let mut train_config = config.train.clone();
            train_config.grad_clip = clip;
            let model = train(
                init(),
                &schedule,
                &data,
                &train_config,
                0,
                &device,
                &mut Silent,
            )
            .unwrap()
            .model;
            parameters(&model)
                .iter()
                .zip(&before)
                .map(|(after, before)| {
                    let sq: f64 = after
                        .iter()
                        .zip(before)
                        .map(|(a, b)| f64::from(a - b).powi(2))
                        .sum();
                    sq.sqrt()
                })
                .collect()
        };
        let (lr, eps, clip) = (config.train.learning_rate, 1e-5, 1e-6);
        let clipped = moved(clip as f32);
        let free = moved(0.0);
        let bound = lr * clip / eps;
        // float32 rounding of the weights' difference adds about 1e-8 per coordinate
        assert!(
            clipped.iter().all(|&m| m <= bound * 1.01 + 1e-6),
            "{clipped:?} vs {bound}"
        );
        let total = |v: &[f64]| v.iter().map(|m| m * m).sum::<f64>().sqrt();
        assert!(
            total(&free) > 50.0 * total(&clipped),
            "{free:?} vs {clipped:?}"
        );
    }

    #[test]
    fn the_cosine_learning_rate_runs_from_full_to_zero_and_constant_stays() {
        let mut config = TrainConfig {
            learning_rate: 2e-3,
            ..Default::default()
        };
        assert_eq!(learning_rates(&config, 5).unwrap(), vec![2e-3; 5]);
        config.lr_schedule = LrSchedule::Cosine;
        let lrs = learning_rates(&config, 100).unwrap();
        assert_eq!(lrs.len(), 100);
        for (k, &lr) in lrs.iter().enumerate() {
            let expected = 2e-3 * 0.5 * (1.0 + (std::f64::consts::PI * k as f64 / 100.0).cos());
            assert!(
                (lr - expected).abs() < 1e-12,
                "step {k}: {lr} vs {expected}"
            );
        }
        assert_eq!(lrs[0], 2e-3);
        assert!((lrs[50] - 1e-3).abs() < 1e-12);
        assert!(lrs[99] < 1e-6 && lrs[99] > 0.0);
    }

    #[test]
    fn label_dropout_replaces_about_p_of_the_labels_with_the_null_class() {
        let labels: Vec<usize> = (0..100_000).map(|i| i % 8).collect();
        for p in [0.0, 0.1, 0.5, 1.0] {
            let kept = label_dropout(&labels, p, 8, &mut NoiseSource::new(4));
            let dropped = kept.iter().filter(|&&c| c == 8).count() as f64 / labels.len() as f64;
            // Binomial sd at p = 0.5 is 0.0016: five of them.
            assert!((dropped - p).abs() < 0.008, "p = {p}: dropped {dropped}");
            // Every label not dropped is the original one.
            assert!(kept.iter().zip(&labels).all(|(&k, &l)| k == l || k == 8));
        }
    }
}
