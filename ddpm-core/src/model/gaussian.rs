//! The exact denoiser of Gaussian data: a known answer to test samplers against.
//!
//! For data x_0 ~ N(mu, s^2 I) the noised x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps is Gaussian too,
//! and the best prediction of the noise is linear in x_t:
//!
//! `E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab s^2 + 1 - ab)`.
//!
//! A sampler given this denoiser must reproduce N(mu, s^2 I) (up to its own discretisation), so
//! any error in a sampler's coefficients shows up in the mean and spread of its samples.

use burn::prelude::*;

use super::{Denoise, DenoiserOutput};
use crate::diffusion::Prediction;
use crate::schedule::NoiseSchedule;

/// The exact noise prediction for x_0 ~ N(`mean`, `std`^2 I) under a schedule. It has no
/// parameters to train: it is a [`Denoise`], not a module.
#[derive(Debug, Clone)]
pub struct GaussianDenoiser {
    mean: [f32; 2],
    std: f64,
    alpha_bar: Vec<f64>,
}

impl GaussianDenoiser {
    /// The exact denoiser of N(`mean`, `std`^2 I) data noised by `schedule`.
    pub fn new(mean: [f32; 2], std: f64, schedule: &NoiseSchedule) -> Self {
        Self {
            mean,
            std,
            alpha_bar: schedule.alpha_bar.clone(),
        }
    }

    /// The two coefficients of `eps = a x_t - b mu` at time index `t`.
    fn coefficients(&self, t: usize) -> (f64, f64) {
        let ab = self.alpha_bar[t];
        let a = (1.0 - ab).sqrt() / (ab * self.std * self.std + 1.0 - ab);
        (a, a * ab.sqrt())
    }

    fn predict(&self, x_t: Tensor<2>, a: Tensor<2>, b: Tensor<2>) -> DenoiserOutput {
        let mean = Tensor::<1>::from_floats(self.mean, &x_t.device()).reshape([1, 2]);
        DenoiserOutput::new(Prediction::Epsilon, x_t * a - mean * b)
    }
}

impl Denoise for GaussianDenoiser {
    fn prediction(&self) -> Prediction {
        Prediction::Epsilon
    }

    fn learns_variance(&self) -> bool {
        false
    }

    fn denoise(
        &self,
        x_t: Tensor<2>,
        t_index: Tensor<1, Int>,
        _class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        let device = x_t.device();
        let t: Vec<i64> = t_index
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .expect("an Int tensor converts to i64");
        let (a, b): (Vec<f64>, Vec<f64>) = t.iter().map(|&i| self.coefficients(i as usize)).unzip();
        let column = |v: &[f64]| crate::diffusion::per_sample::<2>(v, &device);
        self.predict(x_t, column(&a), column(&b))
    }

    fn denoise_at(
        &self,
        x_t: Tensor<2>,
        t_index: usize,
        _class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        let (a, b) = self.coefficients(t_index);
        let device = x_t.device();
        let scalar = |v: f64| Tensor::<2>::full([1, 1], v as f32, &device);
        self.predict(x_t, scalar(a), scalar(b))
    }
}
