//! A quality metric for generated images: a small classifier trained here on the real images.
//!
//! Two numbers come from it:
//! - its **accuracy on class-conditional samples**: asked for a 3, does the model draw
//!   something the classifier calls a 3?
//! - the **Fréchet classifier distance** (FCD): the Fréchet distance between Gaussians fitted
//!   to the classifier's penultimate-layer features of generated and of real images,
//!   `|mu_g - mu_r|^2 + Tr(S_g + S_r - 2 (S_g S_r)^(1/2))`.
//!
//! The FCD has the form of the papers' FID but not its features: FID reads an Inception network
//! trained on ImageNet, this reads a network trained on the dataset itself, so its values are
//! comparable only with each other (same dataset, same classifier). It is always reported with
//! its floor (two draws of real images) and an untrained model's value beside it.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

use crate::data::ImageSet;
use crate::data::ImageShape;
use crate::error::{DdpmError, Result};
use crate::points::{from_rows, read_floats};
use crate::rng::{NoiseSource, seeded};
use crate::train::{load_weights, save_model};

/// Architecture and training of the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Channels of each 3x3 convolution; every one after the first halves the resolution.
    pub channels: Vec<usize>,
    /// Width of the penultimate layer: the features the Fréchet distance is computed on.
    pub features: usize,
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam's step size.
    pub learning_rate: f64,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            channels: vec![32, 64, 64],
            features: 64,
            epochs: 8,
            batch_size: 64,
            learning_rate: 1e-3,
        }
    }
}

impl ClassifierConfig {
    /// Check every field; `prefix` is the path of this section in the experiment config.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let field = |name: &str| format!("{prefix}{name}");
        if self.channels.is_empty()
            || self.channels.len() > 6
            || self.channels.iter().any(|&c| c == 0 || c > 1024)
        {
            return Err(DdpmError::invalid(
                &field("channels"),
                format!("{:?}", self.channels),
                "must list 1 to 6 widths, each in 1..=1024",
            ));
        }
        for (name, value, max) in [
            ("features", self.features, 4096),
            ("epochs", self.epochs, 10_000),
            ("batch_size", self.batch_size, 65_536),
        ] {
            if !(1..=max).contains(&value) {
                return Err(DdpmError::invalid(
                    &field(name),
                    value,
                    format!("must be in 1..={max}"),
                ));
            }
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate < 1.0)
        {
            return Err(DdpmError::invalid(
                &field("learning_rate"),
                self.learning_rate,
                "must be in (0, 1)",
            ));
        }
        Ok(())
    }

    /// An untrained classifier for `shape` and `classes` (wrap in [`seeded`] for reproducible
    /// weights).
    pub fn init(&self, shape: ImageShape, classes: usize, device: &Device) -> ImageClassifier {
        let mut width = shape.channels;
        let convs = self
            .channels
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let stride = if i == 0 { 1 } else { 2 };
                let layer = Conv2dConfig::new([width, c], [3, 3])
                    .with_stride([stride, stride])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device);
                width = c;
                layer
            })
            .collect();
        ImageClassifier {
            convs,
            hidden: LinearConfig::new(width, self.features).init(device),
            output: LinearConfig::new(self.features, classes).init(device),
            shape,
        }
    }
}

/// A small convolutional classifier: 3x3 convolutions with ReLU (each after the first
/// halving the resolution), global average pooling, a hidden layer (the features) and logits.
#[derive(Module, Debug)]
pub struct ImageClassifier {
    convs: Vec<Conv2d>,
    hidden: Linear,
    output: Linear,
    #[module(skip)]
    shape: ImageShape,
}

impl ImageClassifier {
    /// The penultimate-layer features of images given as rows in [-1, 1]
    /// (`[batch, channels * height * width]`): `[batch, features]`.
    pub fn features(&self, images: Tensor<2>) -> Tensor<2> {
        let [batch, _] = images.dims();
        let mut h = self.shape.unflatten(images);
        for conv in &self.convs {
            h = relu(conv.forward(h));
        }
        let [_, c, _, _] = h.dims();
        let pooled = h.mean_dim(3).mean_dim(2).reshape([batch, c]);
        relu(self.hidden.forward(pooled))
    }

    /// Class logits of images given as rows in [-1, 1]: `[batch, classes]`.
    pub fn logits(&self, images: Tensor<2>) -> Tensor<2> {
        self.output.forward(self.features(images))
    }

    /// The most likely class of each image (rows in [-1, 1]), computed in batches.
    pub fn predict(&self, rows: &[Vec<f32>], device: &Device) -> Result<Vec<usize>> {
        let mut classes = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(EVAL_BATCH) {
            let logits = self.logits(from_rows(chunk, device)?);
            let best = logits.argmax(1).into_data();
            let best: Vec<i64> =
                best.convert::<i64>()
                    .try_to_vec::<i64>()
                    .map_err(|e| DdpmError::InvalidInput {
                        field: "logits",
                        message: format!("cannot read: {e:?}"),
                    })?;
            classes.extend(best.into_iter().map(|c| c as usize));
        }
        Ok(classes)
    }

    /// The features of each image (rows in [-1, 1]), computed in batches, as f64 rows.
    pub fn feature_rows(&self, rows: &[Vec<f32>], device: &Device) -> Result<Vec<Vec<f64>>> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(EVAL_BATCH) {
            let features = self.features(from_rows(chunk, device)?);
            let [_, width] = features.dims();
            let values = read_floats(features)?;
            out.extend(
                values
                    .chunks_exact(width)
                    .map(|r| r.iter().map(|&v| f64::from(v)).collect()),
            );
        }
        Ok(out)
    }

    /// The share of `rows` classified as `labels`.
    pub fn accuracy(&self, rows: &[Vec<f32>], labels: &[usize], device: &Device) -> Result<f64> {
        if rows.is_empty() || rows.len() != labels.len() {
            return Err(DdpmError::InvalidInput {
                field: "labels",
                message: format!(
                    "need one label per image and at least one image: {} images, {} labels",
                    rows.len(),
                    labels.len()
                ),
            });
        }
        let predicted = self.predict(rows, device)?;
        let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(right as f64 / rows.len() as f64)
    }
}

/// Images per forward pass when evaluating.
const EVAL_BATCH: usize = 256;

/// Train a classifier on `data` (cross-entropy, Adam). Every random draw comes from `seed`.
pub fn train_classifier(
    data: &ImageSet,
    config: &ClassifierConfig,
    seed: u64,
    device: &Device,
) -> Result<ImageClassifier> {
    config.validate("classifier.")?;
    if data.is_empty() {
        return Err(DdpmError::InvalidInput {
            field: "data",
            message: "the dataset is empty".into(),
        });
    }
    let autodiff = device.clone().autodiff();
    let mut model = seeded(&autodiff, seed, || {
        config.init(data.shape(), data.num_classes, &autodiff)
    })
    .train();
    let mut optimizer = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&autodiff);
    let mut rng = NoiseSource::new(seed ^ 0x5eed);
    for epoch in 0..config.epochs {
        let order = rng.permutation(data.len());
        for batch in order.chunks(config.batch_size) {
            let x = data.batch(batch, &autodiff);
            let labels: Vec<i64> = batch.iter().map(|&i| data.labels[i] as i64).collect();
            let y = Tensor::<1, Int>::from_ints(labels.as_slice(), &autodiff);
            let loss = loss_fn.forward(model.logits(x), y);
            let value: f32 = loss.clone().into_scalar();
            if !value.is_finite() {
                return Err(DdpmError::Diverged {
                    epoch,
                    step: 0,
                    loss: value,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.learning_rate, model, grads);
        }
    }
    Ok(model.valid())
}

/// The classifier cached at `path` if it loads, else one trained on `data` and saved there
/// (atomically). The file name should say what it was trained on and how: a cached classifier
/// is used whatever `data` is. Returns the classifier and whether it was trained now.
pub fn cached_classifier(
    path: &Path,
    data: &ImageSet,
    config: &ClassifierConfig,
    seed: u64,
    device: &Device,
) -> Result<(ImageClassifier, bool)> {
    let fresh = config.init(data.shape(), data.num_classes, device);
    if path.is_file()
        && let Ok(model) = load_weights(fresh, path)
    {
        return Ok((model, false));
    }
    let model = train_classifier(data, config, seed, device)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DdpmError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
    }
    save_model(&model, path)?;
    Ok((model, true))
}

/// The Fréchet distance between Gaussians fitted to two sets of feature rows:
/// `|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`.
///
/// `Tr (S_a S_b)^(1/2)` is computed as the sum of the square roots of the eigenvalues of the
/// symmetric `S_a^(1/2) S_b S_a^(1/2)`, which has the same eigenvalues as `S_a S_b`.
pub fn frechet_distance(a: &[Vec<f64>], b: &[Vec<f64>]) -> Result<f64> {
    let (mean_a, cov_a) = moments(a, "a")?;
    let (mean_b, cov_b) = moments(b, "b")?;
    if mean_a.len() != mean_b.len() {
        return Err(DdpmError::InvalidInput {
            field: "b",
            message: format!(
                "features have {} values, a's have {}",
                mean_b.len(),
                mean_a.len()
            ),
        });
    }
    let root_a = psd_sqrt(&cov_a);
    let middle = &root_a * &cov_b * &root_a;
    let middle = (&middle + middle.transpose()) * 0.5;
    let cross: f64 = SymmetricEigen::new(middle)
        .eigenvalues
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    let distance = (mean_a - mean_b).norm_squared() + cov_a.trace() + cov_b.trace() - 2.0 * cross;
    if !distance.is_finite() {
        return Err(DdpmError::InvalidInput {
            field: "features",
            message: "the Fréchet distance is not finite (non-finite features?)".into(),
        });
    }
    // Rounding can leave a tiny negative value for identical sets.
    Ok(distance.max(0.0))
}

/// Mean and unbiased covariance of feature rows.
fn moments(
    rows: &[Vec<f64>],
    name: &'static str,
) -> Result<(nalgebra::DVector<f64>, DMatrix<f64>)> {
    let n = rows.len();
    let d = rows.first().map_or(0, Vec::len);
    if n < 2 || d == 0 || rows.iter().any(|r| r.len() != d) {
        return Err(DdpmError::InvalidInput {
            field: name,
            message: format!("need at least 2 feature rows of one non-zero width, got {n}"),
        });
    }
    if rows.iter().flatten().any(|v| !v.is_finite()) {
        return Err(DdpmError::InvalidInput {
            field: name,
            message: "features hold non-finite values".into(),
        });
    }
    let x = DMatrix::from_row_iterator(n, d, rows.iter().flatten().copied());
    let mean = x.row_mean().transpose();
    let centred = DMatrix::from_fn(n, d, |i, j| x[(i, j)] - mean[j]);
    let cov = centred.transpose() * &centred / (n as f64 - 1.0);
    Ok((mean, cov))
}

/// The square root of a symmetric positive semi-definite matrix (negative rounding in its
/// eigenvalues is clamped to 0).
fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = SymmetricEigen::new(m.clone());
    let roots = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian_rows(n: usize, d: usize, scale: &[f64], shift: f64, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = NoiseSource::new(seed);
        (0..n)
            .map(|_| {
                rng.normal_vec(d)
                    .iter()
                    .zip(scale)
                    .map(|(&z, &s)| f64::from(z) * s + shift)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn frechet_distance_matches_the_closed_form_of_diagonal_gaussians() {
        // For diagonal covariances the distance is sum (mu_a - mu_b)^2 + (s_a - s_b)^2.
        let a = gaussian_rows(20_000, 3, &[1.0, 2.0, 0.5], 0.0, 1);
        let b = gaussian_rows(20_000, 3, &[3.0, 2.0, 1.0], 1.0, 2);
        let expected = 3.0 * 1.0 + (4.0 + 0.0 + 0.25);
        let got = frechet_distance(&a, &b).unwrap();
        assert!((got - expected).abs() < 0.15, "{got} vs {expected}");
        // symmetric, and zero for a set against itself
        assert!((frechet_distance(&b, &a).unwrap() - got).abs() < 1e-6);
        assert!(frechet_distance(&a, &a).unwrap() < 1e-6);
    }

    #[test]
    fn frechet_distance_sees_correlation_that_the_marginals_hide() {
        // Same marginals (unit variance), correlation 0.9 against none: the closed form for
        // 2x2 covariances [[1, r], [r, 1]] vs I is 2 + 2 - 2 (sqrt(1 + r) + sqrt(1 - r)).
        let r: f64 = 0.9;
        let mut rng = NoiseSource::new(5);
        let correlated: Vec<Vec<f64>> = (0..40_000)
            .map(|_| {
                let z = rng.normal_vec(2);
                let (u, v) = (f64::from(z[0]), f64::from(z[1]));
                vec![u, r * u + (1.0 - r * r).sqrt() * v]
            })
            .collect();
        let independent = gaussian_rows(40_000, 2, &[1.0, 1.0], 0.0, 6);
        let expected = 4.0 - 2.0 * ((1.0 + r).sqrt() + (1.0 - r).sqrt());
        let got = frechet_distance(&correlated, &independent).unwrap();
        assert!((got - expected).abs() < 0.03, "{got} vs {expected}");
    }

    #[test]
    fn frechet_distance_rejects_bad_input() {
        let ok = gaussian_rows(10, 2, &[1.0, 1.0], 0.0, 1);
        assert!(frechet_distance(&ok[..1], &ok).is_err());
        assert!(frechet_distance(&ok, &gaussian_rows(10, 3, &[1.0; 3], 0.0, 2)).is_err());
        let mut bad = ok.clone();
        bad[3][1] = f64::NAN;
        assert!(frechet_distance(&bad, &ok).is_err());
    }

    #[test]
    fn bad_classifier_config_names_the_field() {
        for (config, field) in [
            (
                ClassifierConfig {
                    channels: vec![],
                    ..Default::default()
                },
                "classifier.channels",
            ),
            (
                ClassifierConfig {
                    features: 0,
                    ..Default::default()
                },
                "classifier.features",
            ),
            (
                ClassifierConfig {
                    learning_rate: f64::NAN,
                    ..Default::default()
                },
                "classifier.learning_rate",
            ),
        ] {
            let err = config.validate("classifier.").unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
