//! The MLP's two elementwise hot spots, computed in SIMD lanes on the host when its tensors live
//! on a CPU backend.
//!
//! burn's CPU backends evaluate `sin`, `cos` and GELU's `erf` one element at a time through
//! scalar libm calls (about 9-12 ns each here), so at 2000 points the sinusoidal features and
//! the four GELUs of a sampling step cost about 15 ms, several times the step's matmuls. On a
//! CPU backend the tensor already is host memory, so this module reads it, evaluates eight lanes
//! at a time with the `wide` crate (`f32x8`), and hands the result back:
//! - the sinusoidal features of x_t and t in inference (no autodiff): the same function as the
//!   tensor version, within 2e-6;
//! - GELU in inference (no autodiff): the exact `x Phi(x)` form, with `erf` as the rational
//!   function Eigen and XLA vectorise (GELU within 1.5e-6 of the exact value). Training keeps burn's GELU and its
//!   gradient.
//!
//! On wgpu none of this runs: a GPU evaluates the tensor ops in parallel, and reading its buffers
//! back every step would stall it.

use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;
use wide::f32x8;

/// Elements per parallel task: large enough that splitting costs nothing next to the work.
pub(super) const CHUNK: usize = 16 * 1024;

/// Whether `device` (with or without autodiff) is one of the CPU backends, whose tensors the
/// host can read without a transfer.
pub(crate) fn on_cpu(device: &Device) -> bool {
    let plain = device.clone().inner();
    #[cfg(feature = "flex")]
    if plain == Device::flex() {
        return true;
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    if plain == Device::ndarray() {
        return true;
    }
    let _ = plain;
    false
}

/// Whether the host kernels here serve tensors on `device`: a CPU backend without autodiff
/// (inference). Under autodiff the tensor ops keep the graph (and burn's gradient of GELU);
/// on a GPU, reading buffers back every step would stall it.
pub(crate) fn host_path(device: &Device) -> bool {
    !device.is_autodiff() && on_cpu(device)
}

pub(crate) fn host_values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("an f32 tensor reads back as f32")
}

/// `[sin(v w_0..w_{h-1}), cos(v w_0..w_{h-1})]` for every value v of `x` (`[batch, k]`), row by
/// row and column by column: `[batch, k * 2h]`, `h = freqs.len()`.
pub(crate) fn sinusoidal_features(x: Tensor<2>, freqs: &[f32]) -> Tensor<2> {
    let [batch, columns] = x.dims();
    let device = x.device();
    let values = host_values(x);
    let half = freqs.len();
    if half == 0 {
        return Tensor::zeros([batch, 0], &device);
    }
    let mut out = vec![0f32; values.len() * 2 * half];
    // each task encodes `values_per_task` values into `2 * half` features apiece
    let values_per_task = (CHUNK / (2 * half)).max(1);
    let tasks = values
        .par_chunks(values_per_task)
        .zip(out.par_chunks_mut(values_per_task * 2 * half));
    tasks.for_each(|(values, out)| sinusoidal_rows(values, freqs, out));
    Tensor::from_data(TensorData::new(out, [batch, columns * 2 * half]), &device)
}

/// The features of `values` into `out` (`2 * freqs.len()` per value).
fn sinusoidal_rows(values: &[f32], freqs: &[f32], out: &mut [f32]) {
    let half = freqs.len();
    let lanes = half / 8 * 8;
    for (v, row) in values.iter().zip(out.chunks_exact_mut(2 * half)) {
        let (sin, cos) = row.split_at_mut(half);
        let vv = f32x8::splat(*v);
        for i in (0..lanes).step_by(8) {
            let w = f32x8::new(freqs[i..i + 8].try_into().expect("8 lanes"));
            let (s, c) = (vv * w).sin_cos();
            sin[i..i + 8].copy_from_slice(&s.to_array());
            cos[i..i + 8].copy_from_slice(&c.to_array());
        }
        for i in lanes..half {
            (sin[i], cos[i]) = (v * freqs[i]).sin_cos();
        }
    }
}

/// erf(x), eight lanes at a time, as a rational function of x on [-4, 4] (beyond which erf is
/// +-1 in f32): the minimax fit Eigen and XLA vectorise, only multiplications, additions and
/// one division, so no lane waits on a libm call. Error below 4e-7, GELU's below 1e-6 (tested
/// below).
fn erf8(x: f32x8) -> f32x8 {
    const ALPHA: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_600_1e-3,
        -1.609_603_3e-2,
    ];
    const BETA: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329_2e-3,
        -1.426_474e-2,
    ];
    let clamped = x.max(f32x8::splat(-4.0)).min(f32x8::splat(4.0));
    let x2 = clamped * clamped;
    let horner = |coefficients: &[f32]| {
        coefficients
            .iter()
            .fold(f32x8::ZERO, |acc, &c| acc * x2 + f32x8::splat(c))
    };
    let rational = clamped * horner(&ALPHA) / horner(&BETA);
    // out there erf is +-1 to f32 precision; the fit's own value at +-4 is 1.2e-7 short of it,
    // which GELU's x / 2 would scale into an error growing with |x|
    let saturated = x.abs().simd_ge(f32x8::splat(4.0));
    saturated.bitselect(clamped * f32x8::splat(0.25), rational)
}

/// `Phi(x) = 0.5 (1 + erf(x / sqrt 2))`, the standard normal's distribution function.
pub(super) fn normal_cdf8(x: f32x8) -> f32x8 {
    f32x8::splat(0.5) * (f32x8::ONE + erf8(x * f32x8::splat(std::f32::consts::FRAC_1_SQRT_2)))
}

/// `f` of every value, in place, eight lanes at a time; the last < 8 values are padded into
/// one vector, so every value goes through the same formula.
pub(super) fn in_lanes(values: &mut [f32], f: impl Fn(f32x8) -> f32x8) {
    let mut chunks = values.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let y = f(f32x8::new((&*chunk).try_into().expect("8 lanes")));
        chunk.copy_from_slice(&y.to_array());
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut lanes = [0f32; 8];
        lanes[..tail.len()].copy_from_slice(tail);
        let y = f(f32x8::new(lanes)).to_array();
        tail.copy_from_slice(&y[..tail.len()]);
    }
}

/// GELU, `x Phi(x)`, of every element, in place.
fn gelu_slice(values: &mut [f32]) {
    in_lanes(values, |x| x * normal_cdf8(x));
}

/// GELU of a tensor on a CPU backend without autodiff (see the module documentation).
pub(crate) fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let shape = x.shape();
    let mut values = host_values(x);
    values.par_chunks_mut(CHUNK).for_each(gelu_slice);
    Tensor::from_data(TensorData::new(values, shape), &device)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn simd_erf_and_gelu_match_the_scalar_erf_form() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.005).collect();
        let mut g = xs.clone();
        gelu_slice(&mut g);
        let mut worst_erf = 0f64;
        let mut worst_gelu = 0f64;
        for (&x, &y) in xs.iter().zip(&g) {
            let exact_erf = reference_erf(f64::from(x));
            let e = erf8(f32x8::splat(x)).to_array()[0];
            worst_erf = worst_erf.max((f64::from(e) - exact_erf).abs());
            let exact = 0.5 * f64::from(x) * (1.0 + reference_erf(f64::from(x) / 2f64.sqrt()));
            worst_gelu = worst_gelu.max((f64::from(y) - exact).abs() / (1.0 + exact.abs()));
        }
        assert!(worst_erf < 4e-7, "erf error {worst_erf:e}");
        // 0.5 x (1 + erf) cancels for negative x: 9.1e-7 measured near x = -4, where flex's scalar
        // erff-based GELU is off by about 1.5e-7 (erf's own float rounding, times x / 2)
        assert!(worst_gelu < 1.5e-6, "GELU error {worst_gelu:e}");
        // a tail that does not fill eight lanes goes through the same formula
        let mut odd = vec![1.0f32, -0.5, 2.0];
        gelu_slice(&mut odd);
        for (y, exact) in odd.iter().zip([0.841_344_7, -0.154_268_5, 1.954_499_7]) {
            assert!((y - exact).abs() < 1e-6, "{odd:?}");
        }
        // NaN stays NaN; +inf stays +inf; -inf gives -inf * 0 = NaN, as burn's GELU does
        let mut special = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0];
        gelu_slice(&mut special);
        assert!(special[0].is_nan());
        assert_eq!(special[1], f32::INFINITY);
        assert!(special[2].is_nan() || special[2] <= 0.0, "{special:?}");
        assert_eq!(special[3], 0.0);
    }

    /// erf in f64 by its Taylor series near 0 and its continued fraction beyond.
    pub(crate) fn reference_erf(x: f64) -> f64 {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), converges fast for |x| < 3
        if x.abs() < 3.0 {
            let mut term = x;
            let mut sum = x;
            for n in 1..200 {
                term *= -x * x / n as f64;
                let add = term / (2 * n + 1) as f64;
                sum += add;
                if add.abs() < 1e-17 {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // |erf| > 1 - 2.3e-5 out here; erfc by the continued fraction
            let a = x.abs();
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            let erfc = (-a * a).exp() / (f * std::f64::consts::PI.sqrt());
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn host_sinusoidal_features_match_sin_and_cos() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let x = Tensor::<2>::from_floats([[0.0f32, 1.5], [-3.25, 80.0]], &device);
        let freqs: Vec<f32> = (0..11).map(|i| 0.7f32.powi(i) * 25.0).collect();
        let out: Vec<f32> = sinusoidal_features(x, &freqs)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(out.len(), 2 * 2 * 22);
        for (j, v) in [0.0f64, 1.5, -3.25, 80.0].iter().enumerate() {
            for (i, &w) in freqs.iter().enumerate() {
                // the angle rounded to f32 as both versions compute it
                let a = f64::from(*v as f32 * w);
                assert!((f64::from(out[j * 22 + i]) - a.sin()).abs() < 2e-6);
                assert!((f64::from(out[j * 22 + 11 + i]) - a.cos()).abs() < 2e-6);
            }
        }
    }

    /// The host kernels against the tensor ops they replace (the features under autodiff take
    /// the tensor path; GELU is compared with burn's own), on enough values to split into many
    /// parallel tasks, and through the MLP.
    #[test]
    fn host_kernels_match_the_tensor_path_on_many_values() {
        use crate::model::{Activation, Head, MlpConfig, sinusoidal_embedding};
        use crate::rng::{NoiseSource, seeded};
        let plain = crate::backend::Backend::default_cpu().device().unwrap();
        let ad = plain.clone().autodiff();
        assert!(host_path(&plain) && !host_path(&ad));
        let gap = |a: Tensor<2>, b: Tensor<2>| -> f32 { (a - b.inner()).abs().max().into_scalar() };
        let values = NoiseSource::new(2).normal_vec(3000 * 2);
        let on = |device: &Device| {
            Tensor::<2>::from_data(TensorData::new(values.clone(), [3000, 2]), device)
        };
        for (size, scale) in [(128, 25.0), (22, 1.0)] {
            let g = gap(
                sinusoidal_embedding(on(&plain), size, scale),
                sinusoidal_embedding(on(&ad), size, scale),
            );
            assert!(g < 2e-6, "features {size}: {g:e}");
        }
        let h = NoiseSource::new(3).normal_vec(3000 * 128);
        let h_on = |device: &Device| {
            Tensor::<2>::from_data(TensorData::new(h.clone(), [3000, 128]), device)
        };
        let g = gap(
            Activation::Gelu.apply(h_on(&plain)),
            burn::tensor::activation::gelu(h_on(&ad)),
        );
        assert!(g < 1.5e-6, "GELU: {g:e}");
        let config = MlpConfig::default();
        let t = Tensor::<1, Int>::from_ints([17; 3000], &plain);
        let model = seeded(&plain, 4, || config.init(Head::default(), 100, &plain));
        let model_ad = seeded(&ad, 4, || config.init(Head::default(), 100, &ad));
        let g = gap(
            model.forward(on(&plain), t.clone()),
            model_ad.forward(on(&ad), Tensor::<1, Int>::from_ints([17; 3000], &ad)),
        );
        assert!(g < 1e-5, "MLP: {g:e}");
    }
}
