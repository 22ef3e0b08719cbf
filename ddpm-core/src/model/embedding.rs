//! Time (and input) embeddings.

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::choice::choice_enum;

choice_enum! {
    /// How the denoiser is told the timestep t.
    pub enum TimeEmbeddingKind ("time embedding") {
        /// Fixed sinusoidal features of t (the Transformer's positional encoding, as in DDPM).
        Sinusoidal = "sinusoidal",
        /// A learned vector per timestep (an embedding table of T rows).
        Learned = "learned",
        /// No time input at all: the ablation that shows why t matters.
        None = "none",
    }
}

/// Check an embedding width: even (sines and cosines in pairs) and in 2..=4096.
pub(crate) fn validate_embedding_size(field: &str, size: usize) -> crate::error::Result<()> {
    if size < 2 || !size.is_multiple_of(2) || size > 4096 {
        return Err(crate::error::DdpmError::invalid(
            field,
            size,
            "must be even and in 2..=4096",
        ));
    }
    Ok(())
}

/// Sinusoidal features of every column of `x` (`[batch, k]`): for each value v,
/// `[sin(v w_0), ..., sin(v w_{h-1}), cos(v w_0), ..., cos(v w_{h-1})]` with `h = size / 2` and
/// frequencies `w_i = scale * 10000^(-i / (h - 1))` (Vaswani et al. 2017). Returns
/// `[batch, k * size]`, column by column.
///
/// The features are a fixed function of their input and carry no gradient back to `x` (the
/// models encode x_t and t, which are data). On a CPU backend without autodiff (sampling) they
/// are computed in SIMD lanes on the host; in training on flex by the fused sine and cosine
/// (`backend::fused`); elsewhere by burn's ops.
pub fn sinusoidal_embedding(x: Tensor<2>, size: usize, scale: f64) -> Tensor<2> {
    let [batch, columns] = x.dims();
    let half = size / 2;
    let step = if half > 1 {
        -(10000f64.ln()) / (half - 1) as f64
    } else {
        0.0
    };
    let freqs: Vec<f32> = (0..half)
        .map(|i| (scale * (step * i as f64).exp()) as f32)
        .collect();
    let device = x.device();
    if crate::backend::host::host_path(&device) {
        return crate::backend::host::sinusoidal_features(x, &freqs);
    }
    let x = x.detach();
    let freqs = Tensor::<3>::from_data(TensorData::new(freqs, [1, 1, half]), &device);
    let angles = x.unsqueeze_dim::<3>(2) * freqs; // [batch, columns, half]
    let (sin, cos) = (
        crate::backend::sin(angles.clone()),
        crate::backend::cos(angles),
    );
    Tensor::cat(vec![sin, cos], 2).reshape([batch, columns * 2 * half])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoidal_embedding_matches_the_formula() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let x = Tensor::<2>::from_floats([[0.0f32, 1.0], [2.5, -3.0]], &device);
        let e: Vec<f32> = sinusoidal_embedding(x, 8, 2.0)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(e.len(), 2 * 2 * 8);
        let w = |i: usize| 2.0 * 10000f64.powf(-(i as f64) / 3.0);
        for (row, values) in [[0.0f64, 1.0], [2.5, -3.0]].iter().enumerate() {
            for (col, &v) in values.iter().enumerate() {
                for i in 0..4 {
                    let base = row * 16 + col * 8;
                    assert!((e[base + i] as f64 - (v * w(i)).sin()).abs() < 1e-5);
                    assert!((e[base + 4 + i] as f64 - (v * w(i)).cos()).abs() < 1e-5);
                }
            }
        }
    }
}
