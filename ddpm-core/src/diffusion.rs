//! The forward process q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0), the three things a
//! denoiser can predict (noise, x_0 or velocity) and the conversions between them.
//!
//! All coefficients come from the [`NoiseSchedule`]; this module only applies them to tensors.

use burn::prelude::*;

use crate::choice::choice_enum;
use crate::schedule::NoiseSchedule;

choice_enum! {
    /// What the denoiser's output means, i.e. what it is trained to predict from x_t.
    ///
    /// All three describe the same reverse process: given x_t, any one of them determines the
    /// other two ([`Prediction::to_x0_and_eps`]). They differ in how the loss weighs timesteps
    /// and in how well-conditioned the network's job is at each end of the chain.
    pub enum Prediction ("prediction target") {
        /// The noise eps in x_t (Ho et al. 2020): easy at high noise, ill-conditioned for x_0 near t = T.
        Epsilon = "epsilon",
        /// The clean point x_0 directly: a blurry average at high noise, exact near t = 0.
        X0 = "x0",
        /// The velocity v = sqrt(ab) eps - sqrt(1 - ab) x_0 (Salimans & Ho 2022): balanced at both ends.
        V = "v",
    }
}

choice_enum! {
    /// The variance sigma_t^2 of each reverse step p(x_{t-1} | x_t).
    pub enum PosteriorVariance ("posterior variance") {
        /// sigma_t^2 = beta-tilde_t, the true posterior variance when x_0 is a point (Ho et al. sec. 3.2).
        FixedSmall = "fixed_small",
        /// sigma_t^2 = beta_t, the upper bound, optimal when x_0 ~ N(0, I).
        FixedLarge = "fixed_large",
    }
}

impl PosteriorVariance {
    /// The fixed sigma^2 of the step at index `t`: beta-tilde_t or beta_t (0 for fixed_small at
    /// the last step, which adds no noise). The one place the choice is made; [`Self::log_variance`]
    /// is its logarithm, clipped at the last step as the decoder needs.
    pub fn variance(self, schedule: &NoiseSchedule, t: usize) -> f64 {
        match self {
            PosteriorVariance::FixedSmall => schedule.posterior_variance[t],
            PosteriorVariance::FixedLarge => schedule.betas[t],
        }
    }

    /// log sigma_t^2 at each of `t` (one per sample, or one for the batch), shaped to broadcast.
    /// At t = 0 both use log beta-tilde_1, as improved-diffusion does (beta-tilde_0 is 0, and
    /// the decoder needs a positive variance).
    pub fn log_variance<const D: usize>(
        self,
        schedule: &NoiseSchedule,
        t: &[usize],
        device: &Device,
    ) -> Tensor<D> {
        let values: Vec<f64> = t
            .iter()
            .map(|&i| match self {
                PosteriorVariance::FixedLarge if i > 0 => schedule.log_betas[i],
                _ => schedule.posterior_log_variance_clipped[i],
            })
            .collect();
        per_sample(&values, device)
    }
}

impl Prediction {
    /// What the network should output for data `x0` noised with `noise` at timesteps `t` (one
    /// per sample, or a single one for the whole batch).
    pub fn target<const D: usize>(
        self,
        schedule: &NoiseSchedule,
        x0: Tensor<D>,
        noise: Tensor<D>,
        t: &[usize],
    ) -> Tensor<D> {
        match self {
            Prediction::Epsilon => noise,
            Prediction::X0 => x0,
            Prediction::V => {
                scale(noise, &schedule.sqrt_alpha_bar, t)
                    - scale(x0, &schedule.sqrt_one_minus_alpha_bar, t)
            }
        }
    }

    /// The x_0 and the noise that a network `output` at (x_t, t) stands for, with
    /// `x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps`:
    /// - epsilon: `x_0 = (x_t - sqrt(1 - ab) eps) / sqrt(ab)` (Ho et al. eq. 15);
    /// - x0: `eps = (x_t - sqrt(ab) x_0) / sqrt(1 - ab)`;
    /// - v: `x_0 = sqrt(ab) x_t - sqrt(1 - ab) v`, `eps = sqrt(1 - ab) x_t + sqrt(ab) v`.
    ///
    /// `t` holds one timestep per sample, or a single one for the whole batch.
    pub fn to_x0_and_eps<const D: usize>(
        self,
        schedule: &NoiseSchedule,
        x_t: Tensor<D>,
        t: &[usize],
        output: Tensor<D>,
    ) -> (Tensor<D>, Tensor<D>) {
        let k = |x: Tensor<D>, values: &[f64]| scale(x, values, t);
        match self {
            Prediction::Epsilon => {
                let x0 = k(x_t, &schedule.sqrt_recip_alpha_bar)
                    - k(output.clone(), &schedule.sqrt_recipm1_alpha_bar);
                (x0, output)
            }
            Prediction::X0 => {
                let eps = eps_from_x0(schedule, x_t, output.clone(), t);
                (output, eps)
            }
            Prediction::V => {
                let x0 = k(x_t.clone(), &schedule.sqrt_alpha_bar)
                    - k(output.clone(), &schedule.sqrt_one_minus_alpha_bar);
                let eps = k(x_t, &schedule.sqrt_one_minus_alpha_bar)
                    + k(output, &schedule.sqrt_alpha_bar);
                (x0, eps)
            }
        }
    }
}

/// The noise that x_t holds given x_0: `eps = (x_t - sqrt(ab) x_0) / sqrt(1 - ab)`, the forward
/// process read backwards. The x0 target's conversion ([`Prediction::to_x0_and_eps`]) and a
/// sampler that clips its predicted x_0 (DDIM) both use it. `t` holds one timestep per sample,
/// or a single one for the whole batch.
pub fn eps_from_x0<const D: usize>(
    schedule: &NoiseSchedule,
    x_t: Tensor<D>,
    x0: Tensor<D>,
    t: &[usize],
) -> Tensor<D> {
    let rest = x_t - scale(x0, &schedule.sqrt_alpha_bar, t);
    match t {
        [one] => rest.div_scalar(schedule.sqrt_one_minus_alpha_bar[*one]),
        _ => scale(rest, &schedule.sqrt_recip_one_minus_alpha_bar, t),
    }
}

/// `x` times a schedule coefficient at `t`: one timestep per sample (a broadcast column), or a
/// single timestep for the whole batch (a scalar, the fast path of sampling).
fn scale<const D: usize>(x: Tensor<D>, values: &[f64], t: &[usize]) -> Tensor<D> {
    match t {
        [one] => x.mul_scalar(values[*one]),
        _ => {
            let device = x.device();
            x * gather::<D>(values, t, &device)
        }
    }
}

/// A per-sample coefficient, shaped `[batch, 1, ..., 1]` to broadcast over the sample's dims.
pub fn per_sample<const D: usize>(values: &[f64], device: &Device) -> Tensor<D> {
    let floats: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    let mut shape = [1usize; D];
    shape[0] = values.len();
    Tensor::<1>::from_floats(floats.as_slice(), device).reshape(shape)
}

/// Look up a schedule coefficient at each sample's timestep (or at one timestep for the whole
/// batch when `t` has a single entry: the result then broadcasts).
pub(crate) fn gather<const D: usize>(coefs: &[f64], t: &[usize], device: &Device) -> Tensor<D> {
    let values: Vec<f64> = t.iter().map(|&i| coefs[i]).collect();
    per_sample(&values, device)
}

/// Timesteps as the integer tensor the denoiser takes.
pub fn timestep_tensor(t: &[usize], device: &Device) -> Tensor<1, Int> {
    let ints: Vec<i64> = t.iter().map(|&i| i as i64).collect();
    Tensor::<1, Int>::from_ints(ints.as_slice(), device)
}

/// Sample x_t ~ q(x_t | x_0) in closed form (Ho et al. 2020, eq. 4):
/// `x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise`, one timestep per sample.
pub fn q_sample<const D: usize>(
    schedule: &NoiseSchedule,
    x0: Tensor<D>,
    t: &[usize],
    noise: Tensor<D>,
) -> Tensor<D> {
    scale(x0, &schedule.sqrt_alpha_bar, t) + scale(noise, &schedule.sqrt_one_minus_alpha_bar, t)
}

/// One step of the forward chain, q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)
/// (Ho et al. eq. 2), for a single timestep `t` shared by the batch.
pub fn q_step<const D: usize>(
    schedule: &NoiseSchedule,
    x_prev: Tensor<D>,
    t: usize,
    noise: Tensor<D>,
) -> Tensor<D> {
    x_prev.mul_scalar(schedule.alphas[t].sqrt()) + noise.mul_scalar(schedule.betas[t].sqrt())
}

/// Recover x_0 from x_t and the noise in it (Ho et al. eq. 15 rearranged):
/// `x_0 = x_t / sqrt(alpha_bar_t) - sqrt(1 / alpha_bar_t - 1) eps`.
pub fn predict_x0_from_eps<const D: usize>(
    schedule: &NoiseSchedule,
    x_t: Tensor<D>,
    t: usize,
    eps: Tensor<D>,
) -> Tensor<D> {
    Prediction::Epsilon
        .to_x0_and_eps(schedule, x_t, &[t], eps)
        .0
}

/// Mean and variance of the posterior q(x_{t-1} | x_t, x_0) (Ho et al. eq. 6-7).
#[derive(Debug, Clone)]
pub struct Posterior<const D: usize> {
    /// mu-tilde_t(x_t, x_0) = coef1 x_0 + coef2 x_t.
    pub mean: Tensor<D>,
    /// beta-tilde_t.
    pub variance: f64,
    /// log beta-tilde_t, clipped at t = 0.
    pub log_variance_clipped: f64,
}

/// The posterior q(x_{t-1} | x_t, x_0) at a timestep `t` shared by the batch.
pub fn q_posterior<const D: usize>(
    schedule: &NoiseSchedule,
    x0: Tensor<D>,
    x_t: Tensor<D>,
    t: usize,
) -> Posterior<D> {
    Posterior {
        mean: q_posterior_mean(schedule, x0, x_t, &[t]),
        variance: schedule.posterior_variance[t],
        log_variance_clipped: schedule.posterior_log_variance_clipped[t],
    }
}

/// The posterior mean mu-tilde_t(x_t, x_0) of eq. 7, with one timestep per sample or one for
/// the whole batch.
pub fn q_posterior_mean<const D: usize>(
    schedule: &NoiseSchedule,
    x0: Tensor<D>,
    x_t: Tensor<D>,
    t: &[usize],
) -> Tensor<D> {
    scale(x0, &schedule.posterior_mean_coef1, t) + scale(x_t, &schedule.posterior_mean_coef2, t)
}

/// The log variance of a learned-range reverse step (Nichol & Dhariwal 2021, eq. 15): the
/// network's values v (about [-1, 1]) interpolate between log beta-tilde_t (v = -1) and
/// log beta_t (v = 1), `log sigma^2 = frac log beta_t + (1 - frac) log beta-tilde_t` with
/// `frac = (v + 1) / 2`.
pub fn learned_log_variance<const D: usize>(
    schedule: &NoiseSchedule,
    values: Tensor<D>,
    t: &[usize],
) -> Tensor<D> {
    let frac = values.add_scalar(1.0).div_scalar(2.0);
    scale(frac.clone(), &schedule.log_betas, t)
        + scale(
            frac.neg().add_scalar(1.0),
            &schedule.posterior_log_variance_clipped,
            t,
        )
}

/// The mean of p_theta(x_{t-1} | x_t) written with the predicted noise (Ho et al. eq. 11):
/// mu_theta = (x_t - beta_t / sqrt(1 - alpha-bar_t) eps_theta) / sqrt(alpha_t).
///
/// It equals the posterior mean of eq. 7 with x_0 predicted by eq. 15: predicting the noise is
/// predicting the mean, reparameterised.
pub fn mean_from_eps<const D: usize>(
    schedule: &NoiseSchedule,
    x_t: Tensor<D>,
    t: usize,
    eps: Tensor<D>,
) -> Tensor<D> {
    x_t.mul_scalar(schedule.sqrt_recip_alphas[t]) - eps.mul_scalar(schedule.eps_mean_coef[t])
}

/// Snapshots of the forward process: the data noised to each paper time in `times` (0 is the
/// data itself, `T` is x_T), drawn in closed form with q(x_t | x_0). For the noising picture.
pub fn noising_snapshots(
    schedule: &NoiseSchedule,
    data: &[[f32; 2]],
    times: &[crate::time::PaperTime],
    rng: &mut crate::rng::NoiseSource,
    device: &Device,
) -> crate::error::Result<Vec<crate::points::Frame>> {
    let x0 = crate::points::from_points(data, device);
    times
        .iter()
        .map(|&time| {
            let points = match time.index() {
                None => data.to_vec(),
                Some(index) => {
                    let index = index.min(schedule.timesteps() - 1);
                    let noise = rng.normal([data.len(), 2], device);
                    crate::points::to_points(q_sample(
                        schedule,
                        x0.clone(),
                        &vec![index; data.len()],
                        noise,
                    ))?
                }
            };
            Ok(crate::points::Frame { t: time, points })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::NoiseSource;
    use crate::schedule::ScheduleConfig;

    fn device() -> Device {
        crate::backend::Backend::default_cpu().device().unwrap()
    }

    fn moments(values: &[f32]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var)
    }

    #[test]
    fn q_sample_matches_closed_form_mean_and_variance_by_monte_carlo() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let mut rng = NoiseSource::new(0);
        let n = 40_000;
        for t in [0usize, 100, 500, 999] {
            // Every sample starts from the same x_0 = (1.5, -0.5).
            let x0 = Tensor::<2>::from_floats([[1.5f32, -0.5]], &device).repeat_dim(0, n);
            let noise = rng.normal([n, 2], &device);
            let xt = q_sample(&schedule, x0, &vec![t; n], noise);
            let values: Vec<f32> = xt.into_data().try_to_vec::<f32>().unwrap();
            let xs: Vec<f32> = values.iter().step_by(2).copied().collect();
            let ys: Vec<f32> = values.iter().skip(1).step_by(2).copied().collect();
            let expected_var = 1.0 - schedule.alpha_bar[t];
            let se_mean = 4.0 * (expected_var / n as f64).sqrt();
            for (vals, x) in [(&xs, 1.5), (&ys, -0.5)] {
                let (mean, var) = moments(vals);
                let expected_mean = schedule.sqrt_alpha_bar[t] * x;
                assert!(
                    (mean - expected_mean).abs() < se_mean + 1e-6,
                    "t={t}: mean {mean} vs {expected_mean}"
                );
                assert!(
                    (var - expected_var).abs() < 0.05 * expected_var + 1e-7,
                    "t={t}: var {var} vs {expected_var}"
                );
            }
        }
    }

    #[test]
    fn chaining_q_step_agrees_with_q_sample_in_distribution() {
        let device = device();
        let schedule = ScheduleConfig {
            timesteps: 100,
            ..Default::default()
        }
        .init()
        .unwrap();
        let mut rng = NoiseSource::new(1);
        let n = 20_000;
        let start = Tensor::<2>::from_floats([[1.0f32, 2.0]], &device).repeat_dim(0, n);
        let mut x = start;
        for t in 0..50 {
            x = q_step(&schedule, x, t, rng.normal([n, 2], &device));
        }
        let values: Vec<f32> = x.into_data().try_to_vec::<f32>().unwrap();
        let xs: Vec<f32> = values.iter().step_by(2).copied().collect();
        let (mean, var) = moments(&xs);
        // After steps 0..=49 the closed form is q(x_49 | x_0).
        assert!((mean - schedule.sqrt_alpha_bar[49]).abs() < 0.02, "{mean}");
        assert!((var - (1.0 - schedule.alpha_bar[49])).abs() < 0.03, "{var}");
    }

    #[test]
    fn predict_x0_inverts_q_sample_exactly() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let mut rng = NoiseSource::new(2);
        let x0 = rng.normal([64, 2], &device);
        let noise = rng.normal([64, 2], &device);
        for t in [0usize, 10, 500, 900] {
            let xt = q_sample(&schedule, x0.clone(), &[t; 64], noise.clone());
            let back = predict_x0_from_eps(&schedule, xt, t, noise.clone());
            let err: f32 = (back - x0.clone()).abs().max().into_scalar();
            // f32 round-off grows with 1 / sqrt(alpha_bar_t).
            assert!(
                err < 1e-4 * schedule.sqrt_recip_alpha_bar[t] as f32 * 10.0,
                "t={t}: {err}"
            );
        }
    }

    #[test]
    fn eq_11_mean_equals_the_posterior_mean_of_the_predicted_x0() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let mut rng = NoiseSource::new(5);
        let xt = rng.normal([32, 2], &device);
        let eps = rng.normal([32, 2], &device);
        for t in [1usize, 50, 500, 999] {
            let direct = mean_from_eps(&schedule, xt.clone(), t, eps.clone());
            let x0 = predict_x0_from_eps(&schedule, xt.clone(), t, eps.clone());
            let via_x0 = q_posterior(&schedule, x0, xt.clone(), t).mean;
            let err: f32 = (direct - via_x0).abs().max().into_scalar();
            assert!(err < 1e-4, "t={t}: {err}");
        }
    }

    #[test]
    fn every_prediction_target_converts_back_to_x0_and_the_noise() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let mut rng = NoiseSource::new(6);
        let x0 = rng.normal([5, 2], &device);
        let noise = rng.normal([5, 2], &device);
        let max_err = |a: Tensor<2>, b: Tensor<2>| -> f32 { (a - b).abs().max().into_scalar() };
        // Per-sample timesteps, and one timestep shared by the batch.
        let per_sample = [0usize, 3, 250, 700, 999];
        for t in [&per_sample[..], &[400][..]] {
            let x_t = q_sample(&schedule, x0.clone(), t, noise.clone());
            for &target in Prediction::ALL {
                let output = target.target(&schedule, x0.clone(), noise.clone(), t);
                let (x0_back, eps_back) = target.to_x0_and_eps(&schedule, x_t.clone(), t, output);
                // x_0 from eps divides by sqrt(alpha-bar) ~ 0.006 at t = 999: f32 round-off grows.
                assert!(max_err(x0_back, x0.clone()) < 2e-3, "{target} x0 at {t:?}");
                assert!(
                    max_err(eps_back, noise.clone()) < 2e-3,
                    "{target} eps at {t:?}"
                );
            }
        }
        // The values of the v target and of the posterior mean against diffusers' are in
        // tests/reference.rs.
    }

    #[test]
    fn learned_range_spans_beta_tilde_to_beta() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let t = [10usize, 600];
        let at = |v: f32| -> Vec<f32> {
            let values = Tensor::<2>::full([2, 2], v, &device);
            learned_log_variance(&schedule, values, &t)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (low, high, mid) = (at(-1.0), at(1.0), at(0.0));
        for (i, &step) in t.iter().enumerate() {
            let lo = schedule.posterior_log_variance_clipped[step];
            let hi = schedule.betas[step].ln();
            assert!(
                (f64::from(low[2 * i]) - lo).abs() < 1e-4,
                "v = -1 at {step}"
            );
            assert!(
                (f64::from(high[2 * i]) - hi).abs() < 1e-4,
                "v = 1 at {step}"
            );
            assert!((f64::from(mid[2 * i]) - (lo + hi) / 2.0).abs() < 1e-4);
        }
    }
}
