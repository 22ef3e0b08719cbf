//! The exact denoiser of Gaussian data: a known answer to test samplers against.
//!
//! For data x_0 ~ N(mu, s^2 I) the noised x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps is Gaussian too,
//! N(sqrt(ab) mu, v I) with v = ab s^2 + 1 - ab, and the best prediction of the noise is linear
//! in x_t:
//!
//! `E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / v`.
//!
//! With several classes, class c being N(mu_c, s^2 I) and all equally likely, the same formula
//! holds given the class; without it (the null class) mu is replaced by its posterior mean
//! `sum_c p(c | x_t) mu_c`, where `p(c | x_t)` is proportional to
//! `exp(-|x_t - sqrt(ab) mu_c|^2 / 2v)`. A sampler given this denoiser must reproduce the data
//! (up to its own discretisation), and classifier-free guidance at w = 1 and w = 0 must give
//! the class and the mixture: any error in a sampler's coefficients or in the guidance
//! arithmetic shows up in the mean and spread of its samples.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::{Denoise, DenoiserOutput};
use crate::diffusion::{Prediction, per_sample};
use crate::schedule::NoiseSchedule;

/// The exact noise prediction for Gaussian data under a schedule: one Gaussian
/// ([`Self::new`]), or one per class ([`Self::with_classes`]). It has no parameters to train:
/// it is a [`Denoise`], not a module.
#[derive(Debug, Clone)]
pub struct GaussianDenoiser {
    means: Vec<[f32; 2]>,
    std: f64,
    conditional: bool,
    /// `Some`: the learned-range value of each step's exact reverse variance (see
    /// [`GaussianDenoiser::with_exact_variance`]).
    variance_values: Option<Vec<f64>>,
    alpha_bar: Vec<f64>,
}

impl GaussianDenoiser {
    /// The exact denoiser of N(`mean`, `std`^2 I) data noised by `schedule`.
    pub fn new(mean: [f32; 2], std: f64, schedule: &NoiseSchedule) -> Self {
        Self {
            means: vec![mean],
            std,
            conditional: false,
            variance_values: None,
            alpha_bar: schedule.alpha_bar.clone(),
        }
    }

    /// The exact class-conditional denoiser of an equal mixture of N(`means[c]`, `std`^2 I),
    /// class c being the c-th Gaussian; the null class (index `means.len()`, or no class)
    /// gets the mixture's denoiser. Panics on an empty `means`.
    pub fn with_classes(means: &[[f32; 2]], std: f64, schedule: &NoiseSchedule) -> Self {
        assert!(!means.is_empty(), "a mixture needs at least one mean");
        Self {
            means: means.to_vec(),
            std,
            conditional: true,
            variance_values: None,
            alpha_bar: schedule.alpha_bar.clone(),
        }
    }

    /// Also predict the exact variance of each reverse step, as a learned-range variance
    /// (Nichol & Dhariwal 2021, eq. 15): for Gaussian data q(x_{t-1} | x_t) is itself Gaussian,
    /// with variance `beta-tilde_t + c1_t^2 Var(x_0 | x_t)` (c1_t the posterior mean's weight
    /// of x_0, `Var(x_0 | x_t) = s^2 (1 - ab) / v`). With it every reverse step is exact, so
    /// the likelihood bound equals the true NLL up to the prior term. Single Gaussian only:
    /// the mixture's reverse steps are not Gaussian.
    pub fn with_exact_variance(mut self, schedule: &NoiseSchedule) -> Self {
        assert!(
            !self.conditional && self.means.len() == 1,
            "the exact reverse variance is Gaussian only for a single Gaussian"
        );
        let values = (0..schedule.timesteps())
            .map(|t| {
                let [_, _, v] = self.coefficients(t);
                let ab = self.alpha_bar[t];
                let x0_variance = self.std * self.std * (1.0 - ab) / v;
                let c1 = schedule.posterior_mean_coef1[t];
                let variance = schedule.posterior_variance[t] + c1 * c1 * x0_variance;
                // log sigma^2 = frac log beta + (1 - frac) log beta-tilde; the network's value
                // is 2 frac - 1
                let (low, high) = (
                    schedule.posterior_log_variance_clipped[t],
                    schedule.log_betas[t],
                );
                2.0 * (variance.ln() - low) / (high - low) - 1.0
            })
            .collect();
        self.variance_values = Some(values);
        self
    }

    /// eps = `a` (x_t - `sqrt(ab)` mu), and the variance `v` of x_t given the class.
    fn coefficients(&self, t: usize) -> [f64; 3] {
        let ab = self.alpha_bar[t];
        let v = ab * self.std * self.std + 1.0 - ab;
        [(1.0 - ab).sqrt() / v, ab.sqrt(), v]
    }

    /// `[a, sqrt(ab), v]` as `[n, 1]` columns (one row per timestep given).
    fn columns(&self, t: &[usize], device: &Device) -> [Tensor<2>; 3] {
        let rows: Vec<[f64; 3]> = t.iter().map(|&i| self.coefficients(i)).collect();
        [0, 1, 2].map(|k| per_sample::<2>(&rows.iter().map(|r| r[k]).collect::<Vec<_>>(), device))
    }

    fn predict(
        &self,
        x_t: Tensor<2>,
        t: &[usize],
        class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        let device = x_t.device();
        let [a, sqrt_ab, v] = self.columns(t, &device);
        let [n, _] = x_t.dims();
        let k = self.means.len();
        let flat: Vec<f32> = self.means.iter().flatten().copied().collect();
        let means = Tensor::<1>::from_floats(flat.as_slice(), &device).reshape([k, 2]);
        // E[mu | x_t] over the classes: softmax of -|x_t - sqrt(ab) mu_c|^2 / 2v.
        // The coefficients have one row per point, or one row for all.
        let m = sqrt_ab.dims()[0];
        let mixture = || {
            let centred = x_t.clone().reshape([n, 1, 2])
                - means.clone().reshape([1, k, 2]) * sqrt_ab.clone().reshape([m, 1, 1]);
            let logits = centred.powi_scalar(2).sum_dim(2).reshape([n, k]) / (v.clone() * -2.0);
            softmax(logits, 1).matmul(means.clone())
        };
        let mu = match (self.conditional, class) {
            (false, _) | (true, None) => mixture(),
            (true, Some(class)) => {
                // Rows with the null class (index k) take the mixture's mean.
                let null = class.clone().equal_elem(k as i64).float().reshape([n, 1]);
                let own = means.clone().select(0, class.clamp_max(k as i64 - 1));
                own * null.clone().neg().add_scalar(1.0) + mixture() * null
            }
        };
        let eps = (x_t - mu * sqrt_ab) * a;
        match &self.variance_values {
            None => DenoiserOutput::new(Prediction::Epsilon, eps),
            Some(values) => {
                let column: Vec<f64> = t.iter().map(|&i| values[i]).collect();
                let variance = per_sample::<2>(&column, &device).expand([n, 2]);
                DenoiserOutput::new(Prediction::Epsilon, eps).with_variance(variance)
            }
        }
    }
}

impl Denoise for GaussianDenoiser {
    fn prediction(&self) -> Prediction {
        Prediction::Epsilon
    }

    fn learns_variance(&self) -> bool {
        self.variance_values.is_some()
    }

    fn num_classes(&self) -> usize {
        if self.conditional {
            self.means.len()
        } else {
            0
        }
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
        let t: Vec<usize> = t_index
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .expect("an Int tensor converts to i64")
            .into_iter()
            .map(|i| i as usize)
            .collect();
        self.predict(x_t, &t, class)
    }

    fn denoise_at(
        &self,
        x_t: Tensor<2>,
        t_index: usize,
        class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        self.predict(x_t, &[t_index], class)
    }
}
