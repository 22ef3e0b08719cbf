//! What training minimises, and the likelihood bound it approximates.
//!
//! - L_simple (Ho et al. 2020, eq. 14), written for each [`Prediction`] target: the mean squared
//!   error between the network's output and what it should have predicted.
//! - Min-SNR-gamma weighting (Hang et al. 2023), one answer to "uniform t wastes effort on easy
//!   timesteps": clamp each timestep's weight at `gamma` in x_0 units.
//! - The variational bound L_vlb = L_T + sum L_{t-1} + L_0 (Ho et al. eq. 5): Gaussian KL
//!   terms per step and a decoder term at t = 0. It trains a learned variance in the hybrid loss
//!   L_simple + lambda L_vlb (Nichol & Dhariwal 2021, lambda = 0.001), and, summed over every
//!   step, bounds the model's negative log-likelihood ([`nll_bound`]).

use std::f64::consts::LN_2;

use burn::prelude::*;
use serde::Serialize;

use crate::choice::choice_enum;
use crate::diffusion::{
    PosteriorVariance, Prediction, gather, learned_log_variance, per_sample, q_posterior_mean,
    q_sample, timestep_tensor,
};
use crate::display::Table;
use crate::error::{DdpmError, Result};
use crate::model::Denoise;
use crate::plot::TimestepCurves;
use crate::points::{from_points, read_floats};
use crate::rng::NoiseSource;
use crate::schedule::NoiseSchedule;

choice_enum! {
    /// How the squared error of each timestep is weighted in the loss.
    pub enum LossWeighting ("loss weighting") {
        /// Every timestep counts the same in the target's own units (L_simple).
        Simple = "simple",
        /// Min-SNR-gamma (Hang et al. 2023): in x_0 units a timestep weighs min(SNR_t, gamma).
        /// An epsilon loss weighs each step by SNR_t in x_0 units, so its nearly clean steps
        /// (huge SNR) are capped at gamma; an x_0 loss weighs every step 1, so its very noisy
        /// steps (SNR < 1) are turned down. `train.min_snr_gamma` sets gamma.
        MinSnr = "min_snr",
    }
}

/// The knobs of the training objective: how timesteps are weighted, and how much of the bound a
/// learned variance is trained with. The `train` section of a config holds them
/// (`TrainConfig::objective`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// How each timestep's squared error is weighted.
    pub weighting: LossWeighting,
    /// gamma of min-SNR-gamma weighting (Hang et al. use 5); ignored by `simple`.
    pub min_snr_gamma: f64,
    /// lambda of the hybrid loss L_simple + lambda L_vlb that trains a learned variance
    /// (Nichol & Dhariwal use 0.001); ignored when the variance is fixed.
    pub vlb_weight: f64,
}

impl Default for Objective {
    /// L_simple, with min-SNR's gamma = 5 and the hybrid loss's lambda = 0.001 ready for when
    /// they are switched on.
    fn default() -> Self {
        Self {
            weighting: LossWeighting::Simple,
            min_snr_gamma: 5.0,
            vlb_weight: 0.001,
        }
    }
}

/// What a model with this config minimises, in words, e.g. `"L_simple (MSE of eps)"` or
/// `"min-SNR-5 MSE of v + 0.001 T L_vlb"`: for chart titles and tables.
pub fn objective_name(model: &crate::model::Head, train: &Objective) -> String {
    let target = match model.prediction {
        Prediction::Epsilon => "eps",
        Prediction::X0 => "x0",
        Prediction::V => "v",
    };
    let mut name = match train.weighting {
        LossWeighting::Simple if model.prediction == Prediction::Epsilon => {
            "L_simple (MSE of eps)".to_string()
        }
        LossWeighting::Simple => format!("MSE of {target}"),
        LossWeighting::MinSnr => format!("min-SNR-{} MSE of {target}", train.min_snr_gamma),
    };
    if model.variance == crate::model::ModelVariance::LearnedRange {
        name.push_str(&format!(" + {} T L_vlb", train.vlb_weight));
    }
    name
}

/// The per-sample loss weights of min-SNR-gamma, expressed for the target the model predicts.
///
/// In x_0 units the weight is min(SNR, gamma). The squared error of eps is SNR times that of x_0,
/// and the one of v is (SNR + 1) times, so the same weighting reads min(SNR, gamma) / SNR for
/// epsilon and min(SNR, gamma) / (SNR + 1) for v.
pub fn min_snr_weights(
    schedule: &NoiseSchedule,
    prediction: Prediction,
    t: &[usize],
    gamma: f64,
) -> Vec<f64> {
    t.iter()
        .map(|&i| {
            let snr = schedule.snr[i];
            let clamped = snr.min(gamma);
            match prediction {
                Prediction::Epsilon => clamped / snr,
                Prediction::X0 => clamped,
                Prediction::V => clamped / (snr + 1.0),
            }
        })
        .collect()
}

/// KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) per element, in nats.
pub fn normal_kl<const D: usize>(
    mean1: Tensor<D>,
    logvar1: Tensor<D>,
    mean2: Tensor<D>,
    logvar2: Tensor<D>,
) -> Tensor<D> {
    let ratio = (logvar1.clone() - logvar2.clone()).exp();
    let spread = (mean1 - mean2).square() * logvar2.clone().neg().exp();
    (logvar2 - logvar1 + ratio + spread)
        .sub_scalar(1.0)
        .mul_scalar(0.5)
}

/// -log N(x; mean, exp(logvar)) per element, in nats: the decoder term for continuous data.
pub fn gaussian_nll<const D: usize>(x: Tensor<D>, mean: Tensor<D>, logvar: Tensor<D>) -> Tensor<D> {
    let spread = (x - mean).square() * logvar.clone().neg().exp();
    (logvar + spread)
        .add_scalar((2.0 * std::f64::consts::PI).ln())
        .mul_scalar(0.5)
}

/// How the bound's last step, the decoder p(x_0 | x_1), scores the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Decoder {
    /// A Gaussian density: for continuous data (the toy points). The bound is then on a
    /// differential entropy and can be negative.
    Gaussian,
    /// The Gaussian integrated over each 8-bit pixel's bin of width 2/255 in [-1, 1], the
    /// outer bins extended to infinity (Ho et al. 2020, eq. 13): a probability, so the bound
    /// is on the discrete data's NLL, in the unit image papers report.
    Discretized8Bit,
}

/// -log of the Gaussian N(mean, exp(logvar)) integrated over the 8-bit bin of each `x` in
/// [-1, 1] (Ho et al. eq. 13; improved-diffusion's `discretized_gaussian_log_likelihood`, with
/// the exact normal CDF), per element, in nats.
pub fn discretized_gaussian_nll<const D: usize>(
    x: Tensor<D>,
    mean: Tensor<D>,
    logvar: Tensor<D>,
) -> Tensor<D> {
    let half_bin = 1.0 / 255.0;
    // Phi(z) = (1 + erf(z / sqrt 2)) / 2, at the standardised bin edges
    let inv_std = logvar
        .mul_scalar(-0.5)
        .exp()
        .mul_scalar(std::f64::consts::FRAC_1_SQRT_2);
    let centred = x.clone() - mean;
    let cdf = |edge: Tensor<D>| {
        (edge * inv_std.clone())
            .erf()
            .add_scalar(1.0)
            .mul_scalar(0.5)
    };
    let cdf_plus = cdf(centred.clone().add_scalar(half_bin));
    let cdf_min = cdf(centred.sub_scalar(half_bin));
    let tiny = 1e-12;
    let log_below = cdf_plus.clone().clamp_min(tiny).log(); // lowest bin: (-inf, -1 + 1/255]
    let log_above = cdf_min.clone().neg().add_scalar(1.0).clamp_min(tiny).log(); // highest
    let log_inside = (cdf_plus - cdf_min).clamp_min(tiny).log();
    let lowest = x.clone().lower_elem(-0.999);
    let highest = x.greater_elem(0.999);
    log_inside
        .mask_where(lowest, log_below)
        .mask_where(highest, log_above)
        .neg()
}

/// The bound's term at each sample's timestep, in bits per dimension (`[batch]`):
/// KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) for t > 0 and the decoder's
/// -log p(x_0 | x_1) at t = 0. The model's reverse step is the posterior mean of its `x0_pred`
/// with log variance `log_var`.
///
/// `decoder` scores x_0 at t = 0: [`Decoder::Gaussian`] for the continuous toy data (the result
/// is then a bound on a differential entropy and can be negative), [`Decoder::Discretized8Bit`]
/// for 8-bit images.
pub fn vlb_terms(
    schedule: &NoiseSchedule,
    x0: Tensor<2>,
    x_t: Tensor<2>,
    t: &[usize],
    x0_pred: Tensor<2>,
    log_var: Tensor<2>,
    decoder: Decoder,
) -> Tensor<1> {
    let device = x0.device();
    let [batch, dims] = x0.dims();
    let true_mean = q_posterior_mean(schedule, x0.clone(), x_t.clone(), t);
    let true_log_var: Tensor<2> = gather(&schedule.posterior_log_variance_clipped, t, &device);
    let model_mean = q_posterior_mean(schedule, x0_pred, x_t, t);
    let log_var = log_var.expand([batch, dims]);
    let per_dim = |nats: Tensor<2>| nats.mean_dim(1).div_scalar(LN_2); // [batch, 1], bits
    let kl = per_dim(normal_kl(
        true_mean,
        true_log_var.expand([batch, dims]),
        model_mean.clone(),
        log_var.clone(),
    ));
    let decoder = per_dim(match decoder {
        Decoder::Gaussian => gaussian_nll(x0, model_mean, log_var),
        Decoder::Discretized8Bit => discretized_gaussian_nll(x0, model_mean, log_var),
    });
    // Select, not blend: 0 * inf in the unused term would be NaN.
    let at_zero: Vec<f64> = t.iter().map(|&i| f64::from(u8::from(i == 0))).collect();
    let at_zero = per_sample::<2>(&at_zero, &device)
        .expand([batch, 1])
        .equal_elem(1.0);
    kl.mask_where(at_zero, decoder).reshape([batch])
}

/// The simplified DDPM objective L_simple (Ho et al. eq. 14): the mean squared error between the
/// noise added to x_0 and the noise the model predicts from x_t. Returns a scalar `[1]` tensor.
///
/// This is the loss of an epsilon-predicting model, written out for the tutorial; a model that
/// predicts x_0 or v is compared with its own target instead, so the function is never silently
/// wrong. [`training_loss`] adds the weighting and the learned variance's term.
pub fn noise_prediction_loss<M: Denoise + ?Sized>(
    model: &M,
    schedule: &NoiseSchedule,
    x0: Tensor<2>,
    t: &[usize],
    noise: Tensor<2>,
) -> Tensor<1> {
    let device = x0.device();
    let x_t = q_sample(schedule, x0.clone(), t, noise.clone());
    let out = model.denoise(x_t, timestep_tensor(t, &device), None);
    let target = out.target.target(schedule, x0, noise, t);
    (out.value - target).square().mean()
}

/// The parts of one training loss.
#[derive(Debug, Clone)]
pub struct LossTerms {
    /// What the optimizer minimises: `mse + lambda T vlb` (just `mse` for a fixed variance).
    pub total: Tensor<1>,
    /// The (weighted) mean squared error of the prediction target.
    pub mse: Tensor<1>,
    /// Mean L_vlb term of the batch in bits/dim (learned variance only). The model's mean is
    /// held fixed in it (stop-gradient), so it trains only the variance, as in Improved DDPM.
    pub vlb: Option<Tensor<1>>,
}

/// The training loss for a batch: data `x0`, one timestep and one noise draw per point.
///
/// The target follows the model's [`Prediction`]; the weighting follows `config.weighting`. A
/// model with a learned variance adds `config.vlb_weight * T` times the batch's mean L_vlb term:
/// with lambda = 0.001 this is Improved DDPM's hybrid loss (lambda times the sum of T terms).
pub fn training_loss<M: Denoise + ?Sized>(
    model: &M,
    schedule: &NoiseSchedule,
    x0: Tensor<2>,
    t: &[usize],
    noise: Tensor<2>,
    class: Option<Tensor<1, Int>>,
    config: &Objective,
) -> LossTerms {
    let device = x0.device();
    let x_t = q_sample(schedule, x0.clone(), t, noise.clone());
    let out = model.denoise(x_t.clone(), timestep_tensor(t, &device), class);
    let prediction = out.target;
    let target = prediction.target(schedule, x0.clone(), noise, t);
    let squared = (out.value.clone() - target).square();
    let mse = match config.weighting {
        LossWeighting::Simple => squared.mean(),
        LossWeighting::MinSnr => {
            let weights = min_snr_weights(schedule, prediction, t, config.min_snr_gamma);
            (squared * per_sample::<2>(&weights, &device)).mean()
        }
    };
    let Some(variance) = out.variance else {
        return LossTerms {
            total: mse.clone(),
            mse,
            vlb: None,
        };
    };
    // The bound trains the variance only: the mean is a constant inside it.
    let (x0_pred, _) = prediction.to_x0_and_eps(schedule, x_t.clone(), t, out.value.detach());
    let log_var = learned_log_variance(schedule, variance, t);
    let vlb = vlb_terms(schedule, x0, x_t, t, x0_pred, log_var, Decoder::Gaussian).mean();
    let scale = config.vlb_weight * schedule.timesteps() as f64;
    LossTerms {
        total: mse.clone() + vlb.clone().mul_scalar(scale),
        mse,
        vlb: Some(vlb),
    }
}

/// The variational bound on the negative log-likelihood of some points, in bits per dimension,
/// with its parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NllBound {
    /// L_T + sum_{t >= 1} L_{t-1} + L_0: the bound on -log2 p(x_0) / 2.
    pub bits_per_dim: f64,
    /// L_T = KL(q(x_T | x_0) || N(0, I)): how far x_T is from pure noise (no parameters).
    pub prior: f64,
    /// L_0, the decoder's -log p(x_0 | x_1).
    pub decoder: f64,
    /// The KL terms L_{t-1} for t = 1 .. T-1 (0-based), summed.
    pub diffusion: f64,
    /// The term of each 0-based timestep (index 0 is the decoder), for a chart.
    pub per_step: Vec<f64>,
}

impl NllBound {
    /// Bounds side by side: one row per labelled bound, with its parts.
    pub fn table(bounds: &[(&str, &NllBound)]) -> Table {
        let mut table = Table::new([
            "model",
            "NLL bound (bits/dim)",
            "prior L_T",
            "KL terms, sum",
            "decoder L_0",
        ]);
        for (label, b) in bounds {
            table.push([
                label.to_string(),
                format!("{:.3}", b.bits_per_dim),
                format!("{:.5}", b.prior),
                format!("{:.3}", b.diffusion),
                format!("{:.3}", b.decoder),
            ]);
        }
        table
    }

    /// The KL term of every step t >= 2 (paper time) of each bound, on a log scale: where in
    /// the chain the model loses likelihood. The decoder term (t = 1) is in [`Self::table`].
    pub fn chart(bounds: &[(&str, &NllBound)]) -> TimestepCurves {
        TimestepCurves {
            title: "Terms of the likelihood bound, per step".into(),
            y_desc: "KL(q || p_theta) at step t, bits/dim".into(),
            curves: bounds
                .iter()
                .map(|(label, b)| (label.to_string(), b.per_step[1..].to_vec()))
                .collect(),
            first_t: 2,
        }
    }

    /// The KL terms summed from step 2 up to each t, on a log scale: each curve climbs to the
    /// bound's diffusion part at t = T, and where two variances part ways shows as a widening
    /// gap, which the per-step chart spreads over many small differences.
    pub fn cumulative_chart(bounds: &[(&str, &NllBound)]) -> TimestepCurves {
        TimestepCurves {
            title: "Likelihood bound: KL terms summed from t = 2 up to t".into(),
            y_desc: "sum of KL terms, bits/dim".into(),
            curves: bounds
                .iter()
                .map(|(label, b)| {
                    let running = b.per_step[1..].iter().scan(0.0, |sum, v| {
                        *sum += v;
                        Some(*sum)
                    });
                    (label.to_string(), running.collect())
                })
                .collect(),
            first_t: 2,
        }
    }
}

/// The noise-prediction error at every timestep: the mean over `points` of
/// `|eps_theta(x_t, t) - eps|^2 / D` (each point noised once per t, the noise drawn from `seed`),
/// for t = 1..=T. Whatever the model predicts (eps, x_0 or v), its output is converted to the
/// eps it implies, so models of different targets compare on one scale.
///
/// This is L_simple taken apart by t: training draws t uniformly, so the loss curve is the mean
/// of these values, and where they are large is where the model's capacity goes. In x_0 terms
/// the error at t is this one over SNR(t) (`|x_0 - x0_theta|^2 = |eps - eps_theta|^2 / SNR`),
/// which is why min-SNR weighting changes the balance between the ends.
pub fn eps_error_by_timestep<M: Denoise + ?Sized>(
    model: &M,
    schedule: &NoiseSchedule,
    points: &[[f32; 2]],
    seed: u64,
    device: &Device,
) -> Result<Vec<f64>> {
    if points.is_empty() {
        return Err(DdpmError::InvalidInput {
            field: "points",
            message: "need at least one point".into(),
        });
    }
    let x0 = from_points(points, device);
    let [n, width] = x0.dims();
    let mut rng = NoiseSource::new(seed);
    (0..schedule.timesteps())
        .map(|t| {
            let eps = rng.normal([n, width], device);
            let x_t = q_sample(schedule, x0.clone(), &[t], eps.clone());
            let out = model.denoise_at(x_t.clone(), t, None);
            let (_, eps_pred) = out.target.to_x0_and_eps(schedule, x_t, &[t], out.value);
            let error = (eps_pred - eps).powi_scalar(2).mean_dim(1).reshape([n]);
            mean_of(error, "the noise-prediction error", t)
        })
        .collect()
}

/// [`eps_error_by_timestep`] curves as a chart over t, on a log scale.
pub fn eps_error_chart(curves: &[(&str, &[f64])]) -> TimestepCurves {
    TimestepCurves {
        title: "Noise-prediction error |eps_theta - eps|^2 per dimension, by timestep".into(),
        y_desc: "error (log scale)".into(),
        curves: curves
            .iter()
            .map(|(label, v)| (label.to_string(), v.to_vec()))
            .collect(),
        first_t: 1,
    }
}

/// The prior term L_T = KL(q(x_T | x_0) || N(0, I)) in bits/dim, averaged over the rows of
/// `x0`: how far the end of the forward chain is from the pure noise that sampling starts from.
/// No parameter of the model changes it; it is near 0 only when alpha-bar_T is, and a schedule
/// that leaves signal in x_T (few steps with unscaled betas) shows here.
pub fn prior_term(schedule: &NoiseSchedule, x0: Tensor<2>) -> Result<f64> {
    // q(x_T | x_0) = N(sqrt(ab_T) x_0, (1 - ab_T) I) against N(0, I).
    let [n, _] = x0.dims();
    let last = schedule.timesteps() - 1;
    let mean_t = x0.clone().mul_scalar(schedule.sqrt_alpha_bar[last]);
    let log_var_t = x0
        .zeros_like()
        .add_scalar((1.0 - schedule.alpha_bar[last]).ln());
    let prior_kl = normal_kl(mean_t, log_var_t, x0.zeros_like(), x0.zeros_like())
        .mean_dim(1)
        .div_scalar(LN_2)
        .reshape([n]);
    mean_of(prior_kl, "the prior term", last)
}

/// The variational bound on the NLL of `points` under `model` (improved-diffusion's
/// `calc_bpd_loop`): every timestep is visited once with a fresh noise draw from `seed`.
///
/// The bound is of the model's own reverse process, with the predicted x_0 as the network gives
/// it: sampling's `clip_x0` is not applied (with the default bound it rarely binds).
///
/// `variance` is the reverse-step variance the bound is of: `Some` fixed choice (for any model,
/// a learned-variance one included), or `None` for the model's own learned variance (an error
/// for a model without one). Costs T forward passes over the points.
pub fn nll_bound<M: Denoise + ?Sized>(
    model: &M,
    schedule: &NoiseSchedule,
    points: &[[f32; 2]],
    variance: Option<PosteriorVariance>,
    seed: u64,
    device: &Device,
) -> Result<NllBound> {
    if points.is_empty() {
        return Err(DdpmError::InvalidInput {
            field: "points",
            message: "need at least one point".into(),
        });
    }
    let x0 = from_points(points, device);
    nll_bound_of(model, schedule, x0, Decoder::Gaussian, variance, seed)
}

/// [`nll_bound`] for examples of any size (`x0`: `[n, data_size]`, e.g. images in [-1, 1]
/// flattened), with the given decoder: [`Decoder::Discretized8Bit`] for 8-bit images gives
/// the papers' bits/dim. Every timestep's pass covers all of `x0` at once: split a large set
/// into batches and average.
pub fn nll_bound_of<M: Denoise + ?Sized>(
    model: &M,
    schedule: &NoiseSchedule,
    x0: Tensor<2>,
    decoder: Decoder,
    variance: Option<PosteriorVariance>,
    seed: u64,
) -> Result<NllBound> {
    let device = x0.device();
    let device = &device;
    if variance.is_none() && !model.learns_variance() {
        return Err(DdpmError::InvalidInput {
            field: "variance",
            message: "None means the model's learned variance, and this model has none; \
                      give Some(PosteriorVariance::FixedSmall) or FixedLarge"
                .into(),
        });
    }
    let [n, width] = x0.dims();
    if n == 0 || width != model.data_size() {
        return Err(DdpmError::InvalidInput {
            field: "x0",
            message: format!(
                "need at least one example of the model's {} values; got {n} of {width}",
                model.data_size()
            ),
        });
    }
    let mut rng = NoiseSource::new(seed);
    let mut per_step = Vec::with_capacity(schedule.timesteps());
    for t in 0..schedule.timesteps() {
        let x_t = q_sample(schedule, x0.clone(), &[t], rng.normal([n, width], device));
        let out = model.denoise_at(x_t.clone(), t, None);
        let (x0_pred, _) = out
            .target
            .to_x0_and_eps(schedule, x_t.clone(), &[t], out.value);
        let log_var = match (variance, out.variance) {
            (Some(fixed), _) => fixed.log_variance(schedule, &[t], device),
            (None, Some(v)) => learned_log_variance(schedule, v, &[t]),
            (None, None) => unreachable!("checked above: None needs a learned variance"),
        };
        let term = vlb_terms(schedule, x0.clone(), x_t, &[t], x0_pred, log_var, decoder);
        per_step.push(mean_of(term, "the bound's term", t)?);
    }
    let prior = prior_term(schedule, x0)?;
    let decoder = per_step[0];
    let diffusion: f64 = per_step[1..].iter().sum();
    Ok(NllBound {
        bits_per_dim: prior + decoder + diffusion,
        prior,
        decoder,
        diffusion,
        per_step,
    })
}

/// The mean of a `[n]` tensor, refusing non-finite values.
fn mean_of(values: Tensor<1>, what: &str, t: usize) -> Result<f64> {
    let values = read_floats(values)?;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
    if mean.is_finite() {
        Ok(mean)
    } else {
        Err(DdpmError::InvalidInput {
            field: "model",
            message: format!("{what} at timestep {t} is not finite ({mean})"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Head, MlpConfig, ModelVariance};
    use crate::rng::seeded;
    use crate::schedule::ScheduleConfig;

    fn device() -> Device {
        crate::backend::Backend::default_cpu().device().unwrap()
    }

    fn scalar(x: Tensor<1>) -> f64 {
        f64::from(x.into_scalar::<f32>())
    }

    #[test]
    fn objective_names_say_what_is_minimised() {
        let mut model = Head::default();
        let mut train = Objective::default();
        assert_eq!(objective_name(&model, &train), "L_simple (MSE of eps)");
        model.prediction = Prediction::V;
        train.weighting = LossWeighting::MinSnr;
        model.variance = ModelVariance::LearnedRange;
        assert_eq!(
            objective_name(&model, &train),
            "min-SNR-5 MSE of v + 0.001 T L_vlb"
        );
    }

    #[test]
    fn gaussian_kl_and_nll_match_closed_forms() {
        let device = device();
        let t = |v: f32| Tensor::<1>::from_floats([v], &device);
        // KL(N(1, e^0) || N(0, e^ln4)) = 0.5 (ln 4 - 0 + 1/4 + 1/4 - 1)
        let kl = scalar(normal_kl(t(1.0), t(0.0), t(0.0), t(4f32.ln())));
        assert!((kl - 0.5 * (4f64.ln() - 0.5)).abs() < 1e-6, "{kl}");
        assert!(scalar(normal_kl(t(0.3), t(-1.0), t(0.3), t(-1.0))).abs() < 1e-7);
        // -log N(1; 0, 1) = 0.5 ln(2 pi) + 0.5
        let nll = scalar(gaussian_nll(t(1.0), t(0.0), t(0.0)));
        assert!((nll - 0.5 * (2.0 * std::f64::consts::PI).ln() - 0.5).abs() < 1e-6);
    }

    #[test]
    fn min_snr_weights_agree_in_x0_units_and_clamp_at_gamma() {
        let schedule = ScheduleConfig::default().init().unwrap();
        let t = [0usize, 100, 400, 999];
        let gamma = 5.0;
        let w = |p| min_snr_weights(&schedule, p, &t, gamma);
        let (eps, x0, v) = (w(Prediction::Epsilon), w(Prediction::X0), w(Prediction::V));
        for (i, &step) in t.iter().enumerate() {
            let snr = schedule.snr[step];
            // Each target's squared error is SNR (eps) or SNR + 1 (v) times the x_0 error.
            assert!((eps[i] * snr - x0[i]).abs() < 1e-9 * x0[i].max(1.0));
            assert!((v[i] * (snr + 1.0) - x0[i]).abs() < 1e-9 * x0[i].max(1.0));
            assert!(x0[i] <= gamma);
        }
        // Clean steps (SNR >> gamma) are down-weighted for epsilon; noisy ones keep weight 1.
        assert!(eps[0] < 0.01 && (eps[3] - 1.0).abs() < 1e-12);
    }

    /// On a fixed batch, min-SNR-gamma weighting changes the loss exactly as Hang et al. (2023)
    /// say: each point's squared error times min(SNR_t, gamma) / SNR_t for the noise,
    /// min(SNR_t, gamma) for x_0, min(SNR_t, gamma) / (SNR_t + 1) for v.
    #[test]
    fn min_snr_weighting_changes_the_loss_exactly_as_the_formula_says() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let mut rng = NoiseSource::new(12);
        let x0 = rng.normal([64, 2], &device);
        let noise = rng.normal([64, 2], &device);
        let t = rng.timesteps(64, 1000);
        let gamma = 5.0;
        for &prediction in Prediction::ALL {
            let head = Head {
                prediction,
                ..Head::default()
            };
            let model = seeded(&device, 2, || {
                MlpConfig::default().init(head, 1000, &device)
            });
            let objective = |weighting| Objective {
                weighting,
                min_snr_gamma: gamma,
                ..Default::default()
            };
            let loss = |weighting| {
                let terms = training_loss(
                    &model,
                    &schedule,
                    x0.clone(),
                    &t,
                    noise.clone(),
                    None,
                    &objective(weighting),
                );
                scalar(terms.mse)
            };
            // Each point's squared error, from the model's output and the target.
            let x_t = q_sample(&schedule, x0.clone(), &t, noise.clone());
            let out = model.denoise(x_t, timestep_tensor(&t, &device), None);
            let target = prediction.target(&schedule, x0.clone(), noise.clone(), &t);
            let squared: Vec<f32> = (out.value - target)
                .square()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let weight = |snr: f64| match prediction {
                Prediction::Epsilon => snr.min(gamma) / snr,
                Prediction::X0 => snr.min(gamma),
                Prediction::V => snr.min(gamma) / (snr + 1.0),
            };
            let expected = squared
                .chunks(2)
                .zip(&t)
                .map(|(e, &i)| weight(schedule.snr[i]) * f64::from(e[0] + e[1]))
                .sum::<f64>()
                / squared.len() as f64;
            let (weighted, simple) = (loss(LossWeighting::MinSnr), loss(LossWeighting::Simple));
            eprintln!(
                "{prediction}: min-SNR {weighted:.5} (by hand {expected:.5}), simple {simple:.5}"
            );
            assert!(
                (weighted - expected).abs() < 1e-5 * expected.max(1.0),
                "{prediction}: {weighted} vs {expected}"
            );
            // ... and that is not the unweighted loss (measured 8 %, 47 % and 85 % below it).
            assert!(
                (weighted / simple - 1.0).abs() > 0.05,
                "{prediction}: {weighted} vs {simple}"
            );
        }
    }

    #[test]
    fn vlb_term_vanishes_for_the_true_posterior_and_grows_with_error() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let mut rng = NoiseSource::new(8);
        let x0 = rng.normal([16, 2], &device);
        let t = [500usize; 16];
        let x_t = q_sample(&schedule, x0.clone(), &t, rng.normal([16, 2], &device));
        let true_log_var: Tensor<2> = gather(&schedule.posterior_log_variance_clipped, &t, &device);
        let exact = vlb_terms(
            &schedule,
            x0.clone(),
            x_t.clone(),
            &t,
            x0.clone(),
            true_log_var.clone(),
            Decoder::Gaussian,
        );
        assert!(scalar(exact.abs().max()) < 1e-5);
        let off = vlb_terms(
            &schedule,
            x0.clone(),
            x_t,
            &t,
            x0.add_scalar(0.5),
            true_log_var,
            Decoder::Gaussian,
        );
        assert!(scalar(off.min()) > 0.0);
    }

    #[test]
    fn simple_epsilon_loss_is_the_tutorials_noise_prediction_loss() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let model = seeded(&device, 1, || {
            MlpConfig::default().init(Head::default(), 1000, &device)
        });
        let mut rng = NoiseSource::new(9);
        let x0 = rng.normal([32, 2], &device);
        let noise = rng.normal([32, 2], &device);
        let t = rng.timesteps(32, 1000);
        let config = Objective::default();
        let general = training_loss(
            &model,
            &schedule,
            x0.clone(),
            &t,
            noise.clone(),
            None,
            &config,
        );
        let tutorial = noise_prediction_loss(&model, &schedule, x0, &t, noise);
        assert!((scalar(general.total) - scalar(tutorial)).abs() < 1e-6);
        assert!(general.vlb.is_none());
    }

    #[test]
    fn hybrid_loss_adds_lambda_t_times_the_bound_for_a_learned_variance() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let head = Head {
            variance: ModelVariance::LearnedRange,
            ..Head::default()
        };
        let model = seeded(&device, 1, || {
            MlpConfig::default().init(head, 1000, &device)
        });
        let mut rng = NoiseSource::new(10);
        let x0 = rng.normal([32, 2], &device);
        let noise = rng.normal([32, 2], &device);
        let t = rng.timesteps(32, 1000);
        let config = Objective::default();
        let terms = training_loss(&model, &schedule, x0, &t, noise, None, &config);
        let (total, mse) = (scalar(terms.total), scalar(terms.mse));
        let vlb = scalar(terms.vlb.expect("a learned variance has a bound term"));
        assert!(vlb.is_finite() && vlb > 0.0, "{vlb}");
        assert!((total - (mse + 0.001 * 1000.0 * vlb)).abs() < 1e-4 * total.abs().max(1.0));
    }

    #[test]
    fn discretized_decoder_is_a_distribution_over_the_256_pixel_values() {
        // The bins tile the line (the outer ones reach to infinity), so the probabilities of
        // all 256 values sum to 1 for any mean and variance; a narrow Gaussian at a bin's
        // centre puts almost all its mass in that bin.
        let device = device();
        let values: Vec<f32> = (0..256).map(|p| p as f32 / 127.5 - 1.0).collect();
        for (mean, std) in [(0.0f32, 0.1f32), (0.9, 0.5), (-1.3, 0.05), (0.3, 3.0)] {
            let x = Tensor::<1>::from_floats(values.as_slice(), &device);
            let mean = x.zeros_like().add_scalar(mean);
            let logvar = x.zeros_like().add_scalar(2.0 * std.ln());
            let nll: Vec<f32> = discretized_gaussian_nll(x, mean, logvar)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let total: f64 = nll.iter().map(|&v| (-f64::from(v)).exp()).sum();
            assert!((total - 1.0).abs() < 2e-3, "mass {total} for std {std}");
        }
        let x = Tensor::<1>::from_floats([128.0f32 / 127.5 - 1.0], &device);
        let sharp =
            discretized_gaussian_nll(x.clone(), x.clone(), x.zeros_like().add_scalar(-20.0));
        assert!(scalar(sharp) < 1e-4);
    }

    #[test]
    fn nll_bound_sums_its_parts_and_rejects_empty_input() {
        let device = device();
        let schedule = ScheduleConfig {
            timesteps: 50,
            ..Default::default()
        }
        .init()
        .unwrap();
        let model = seeded(&device, 2, || {
            MlpConfig::default().init(Head::default(), 50, &device)
        });
        let points = [[0.5f32, -0.5], [1.0, 0.0], [-1.0, 0.25]];
        let small = PosteriorVariance::FixedSmall;
        let bound = nll_bound(&model, &schedule, &points, Some(small), 0, &device).unwrap();
        assert_eq!(bound.per_step.len(), 50);
        let sum = bound.prior + bound.per_step.iter().sum::<f64>();
        assert!((bound.bits_per_dim - sum).abs() < 1e-9);
        assert!(
            (bound.bits_per_dim - (bound.prior + bound.decoder + bound.diffusion)).abs() < 1e-9
        );
        // The prior term is a KL: positive, and tiny when x_T is nearly pure noise.
        assert!(bound.prior > 0.0 && bound.prior < 0.01, "{}", bound.prior);
        let table = NllBound::table(&[("untrained", &bound)]);
        assert_eq!(table.rows[0][1], format!("{:.3}", bound.bits_per_dim));
        let chart = NllBound::chart(&[("untrained", &bound)]);
        assert_eq!(chart.curves[0].1.len(), 49);
        assert!(crate::plot::to_svg(&chart).unwrap().contains("<svg"));
        // None asks for the model's learned variance: this model has none.
        let err = nll_bound(&model, &schedule, &points, None, 0, &device).unwrap_err();
        assert!(err.to_string().contains("variance"), "{err}");
        // A learned-variance model is bounded with its own variance (None) or with the fixed
        // one asked for: the choice is honoured, and it changes the bound.
        let head = Head {
            variance: ModelVariance::LearnedRange,
            ..Head::default()
        };
        let learned = seeded(&device, 2, || MlpConfig::default().init(head, 50, &device));
        let own = nll_bound(&learned, &schedule, &points, None, 0, &device).unwrap();
        let fixed = nll_bound(&learned, &schedule, &points, Some(small), 0, &device).unwrap();
        assert!((own.bits_per_dim - fixed.bits_per_dim).abs() > 1e-6);
        let err = nll_bound(&model, &schedule, &[], Some(small), 0, &device).unwrap_err();
        assert!(err.to_string().contains("points"), "{err}");
    }

    #[test]
    fn eps_error_of_the_exact_denoiser_matches_its_closed_form() {
        // For x_0 ~ N(mu, s^2 I) the best eps prediction is E[eps | x_t], whose error per
        // dimension is ab s^2 / (ab s^2 + 1 - ab): near 1 where the data dominates x_t (there
        // the noise cannot be told from the data's own spread) and near 0 at pure noise.
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let schedule = ScheduleConfig {
            timesteps: 100,
            ..Default::default()
        }
        .init()
        .unwrap();
        let (mu, s) = ([1.0f32, -0.5], 0.5f64);
        let model = crate::model::GaussianDenoiser::new(mu, s, &schedule);
        let noise =
            crate::points::to_points(NoiseSource::new(9).normal([4000, 2], &device)).unwrap();
        let points: Vec<[f32; 2]> = noise
            .iter()
            .map(|p| [mu[0] + s as f32 * p[0], mu[1] + s as f32 * p[1]])
            .collect();
        let error = eps_error_by_timestep(&model, &schedule, &points, 3, &device).unwrap();
        assert_eq!(error.len(), 100);
        for t in [0, 10, 50, 99] {
            let ab = schedule.alpha_bar[t];
            let expected = ab * s * s / (ab * s * s + 1.0 - ab);
            // a mean of 8000 squared normals (times the expected value): sd about 1.6 %
            assert!(
                (error[t] - expected).abs() < 0.06 * expected + 1e-4,
                "t = {t}: {} vs {expected}",
                error[t]
            );
        }
        assert!(eps_error_by_timestep(&model, &schedule, &[], 3, &device).is_err());
    }
}
