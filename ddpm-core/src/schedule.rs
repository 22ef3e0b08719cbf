//! Noise schedules and every coefficient derived from them.
//!
//! The [`NoiseSchedule`] owns all of the coefficient math of DDPM (Ho et al. 2020): betas, alphas,
//! alpha-bar, the square roots the forward process needs, the posterior q(x_{t-1} | x_t, x_0) and
//! the signal-to-noise ratio. Nothing else in the crate recomputes them.
//!
//! Timesteps are 0-based: index `t` in `0..T` is the paper's step `t + 1`.

use serde::{Deserialize, Serialize};

use crate::choice::choice_enum;
use crate::error::{DdpmError, Result};

choice_enum! {
    /// How beta_t grows with t.
    pub enum ScheduleKind ("schedule") {
        /// Linear betas from `beta_start` to `beta_end` (Ho et al. 2020).
        Linear = "linear",
        /// alpha-bar follows a squared cosine (Nichol & Dhariwal 2021, eq. 17), s = 0.008.
        Cosine = "cosine",
        /// Betas linear in sqrt: `linspace(sqrt(beta_start), sqrt(beta_end))^2`.
        Quadratic = "quadratic",
        /// Betas follow a sigmoid over `linspace(-6, 6)`, scaled to `[beta_start, beta_end]`.
        Sigmoid = "sigmoid",
    }
}

/// The largest beta any schedule may produce (Nichol & Dhariwal clip the cosine schedule here).
pub const MAX_BETA: f64 = 0.999;

/// Offset `s` of the cosine schedule, so beta_1 is not vanishingly small.
pub const COSINE_S: f64 = 0.008;

/// The knobs of a noise schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Number of diffusion steps T.
    pub timesteps: usize,
    /// Shape of the schedule.
    pub schedule: ScheduleKind,
    /// First beta of the linear/quadratic/sigmoid range (for T = 1000; see `scale_to_timesteps`).
    pub beta_start: f64,
    /// Last beta of the range (for T = 1000; see `scale_to_timesteps`).
    pub beta_end: f64,
    /// Scale the beta range by 1000 / T, as the reference implementations do, so that x_T is
    /// still pure noise when T is small. With T = 50 and no scaling, alpha-bar at T stays near 0.6.
    pub scale_to_timesteps: bool,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            timesteps: 1000,
            schedule: ScheduleKind::Linear,
            beta_start: 1e-4,
            beta_end: 0.02,
            scale_to_timesteps: true,
        }
    }
}

impl ScheduleConfig {
    /// The (beta_start, beta_end) pair actually used, after the 1000 / T scaling.
    pub fn effective_beta_range(&self) -> (f64, f64) {
        let scale = if self.scale_to_timesteps && self.timesteps > 0 {
            1000.0 / self.timesteps as f64
        } else {
            1.0
        };
        (self.beta_start * scale, self.beta_end * scale)
    }

    /// Check every field; `prefix` is the path of this section in the experiment config.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let field = |name: &str| format!("{prefix}{name}");
        if self.timesteps < 2 || self.timesteps > 100_000 {
            return Err(DdpmError::invalid(
                &field("timesteps"),
                self.timesteps,
                "must be in 2..=100000",
            ));
        }
        if self.schedule == ScheduleKind::Cosine {
            return Ok(()); // the cosine schedule does not use the beta range
        }
        for (name, value) in [("beta_start", self.beta_start), ("beta_end", self.beta_end)] {
            if !(value.is_finite() && value > 0.0 && value < 1.0) {
                return Err(DdpmError::invalid(&field(name), value, "must be in (0, 1)"));
            }
        }
        if self.beta_start > self.beta_end {
            return Err(DdpmError::invalid(
                &field("beta_start"),
                self.beta_start,
                format!("must be <= beta_end ({})", self.beta_end),
            ));
        }
        let (_, end) = self.effective_beta_range();
        if end > MAX_BETA {
            return Err(DdpmError::invalid(
                &field("beta_end"),
                self.beta_end,
                format!(
                    "scaled by 1000/T = 1000/{} it becomes {end:.4}, above the maximum beta {MAX_BETA}; \
                     use more timesteps, a smaller beta_end, or scale_to_timesteps = false",
                    self.timesteps
                ),
            ));
        }
        Ok(())
    }

    /// Validate and build the schedule.
    pub fn init(&self) -> Result<NoiseSchedule> {
        self.validate("")?;
        let t = self.timesteps;
        let (b0, b1) = self.effective_beta_range();
        let betas = match self.schedule {
            ScheduleKind::Linear => linspace(b0, b1, t),
            ScheduleKind::Quadratic => linspace(b0.sqrt(), b1.sqrt(), t)
                .into_iter()
                .map(|b| b * b)
                .collect(),
            ScheduleKind::Sigmoid => linspace(-6.0, 6.0, t)
                .into_iter()
                .map(|x| b0 + (b1 - b0) / (1.0 + (-x).exp()))
                .collect(),
            ScheduleKind::Cosine => cosine_betas(t),
        };
        Ok(NoiseSchedule::from_betas(self.schedule, betas))
    }
}

/// `n` evenly spaced points from `start` to `end` inclusive, each computed from its index
/// (never by accumulating a step, which drifts).
pub fn linspace(start: f64, end: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => (0..n)
            .map(|i| start + (end - start) * (i as f64 / (n - 1) as f64))
            .collect(),
    }
}

/// alpha-bar of the cosine schedule at continuous time `t / T` (Nichol & Dhariwal 2021, eq. 17,
/// without the normalisation by f(0)).
fn cosine_f(t_over_big_t: f64) -> f64 {
    let angle = (t_over_big_t + COSINE_S) / (1.0 + COSINE_S) * std::f64::consts::FRAC_PI_2;
    angle.cos().powi(2)
}

/// beta_t = min(1 - alpha_bar(t+1) / alpha_bar(t), 0.999); `t / T` in floating point.
fn cosine_betas(timesteps: usize) -> Vec<f64> {
    let big_t = timesteps as f64;
    (0..timesteps)
        .map(|i| {
            let ratio = cosine_f((i + 1) as f64 / big_t) / cosine_f(i as f64 / big_t);
            (1.0 - ratio).min(MAX_BETA)
        })
        .collect()
}

/// A noise schedule with every coefficient DDPM needs, precomputed in f64.
///
/// Index `t` runs over `0..T`; `alpha_bar_prev[0] = 1` (x_0 is the data).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseSchedule {
    /// The schedule's shape.
    pub kind: ScheduleKind,
    /// beta_t, the variance of the noise added at step t.
    pub betas: Vec<f64>,
    /// log(beta_t): the upper end of a learned variance's range (Nichol & Dhariwal 2021).
    pub log_betas: Vec<f64>,
    /// alpha_t = 1 - beta_t.
    pub alphas: Vec<f64>,
    /// alpha-bar_t = prod_{s <= t} alpha_s.
    pub alpha_bar: Vec<f64>,
    /// alpha-bar_{t-1}, with alpha-bar_{-1} = 1.
    pub alpha_bar_prev: Vec<f64>,
    /// sqrt(alpha-bar_t): how much of x_0 survives in x_t.
    pub sqrt_alpha_bar: Vec<f64>,
    /// sqrt(1 - alpha-bar_t): the standard deviation of the noise in x_t.
    pub sqrt_one_minus_alpha_bar: Vec<f64>,
    /// 1 / sqrt(1 - alpha-bar_t), to recover the noise from x_t and x_0.
    pub sqrt_recip_one_minus_alpha_bar: Vec<f64>,
    /// 1 / sqrt(alpha-bar_t), to recover x_0 from x_t and the noise.
    pub sqrt_recip_alpha_bar: Vec<f64>,
    /// sqrt(1 / alpha-bar_t - 1), ditto.
    pub sqrt_recipm1_alpha_bar: Vec<f64>,
    /// beta-tilde_t = beta_t (1 - alpha-bar_{t-1}) / (1 - alpha-bar_t), the posterior variance
    /// (Ho et al. eq. 7).
    pub posterior_variance: Vec<f64>,
    /// log(beta-tilde_t), with t = 0 clipped to beta-tilde_1 (beta-tilde_0 is 0).
    pub posterior_log_variance_clipped: Vec<f64>,
    /// Coefficient of x_0 in the posterior mean (Ho et al. eq. 7).
    pub posterior_mean_coef1: Vec<f64>,
    /// Coefficient of x_t in the posterior mean (Ho et al. eq. 7).
    pub posterior_mean_coef2: Vec<f64>,
    /// 1 / sqrt(alpha_t): the scale of x_t in the noise-form mean mu_theta (Ho et al. eq. 11).
    pub sqrt_recip_alphas: Vec<f64>,
    /// beta_t / (sqrt(alpha_t) sqrt(1 - alpha-bar_t)): the weight of the predicted noise in
    /// mu_theta (Ho et al. eq. 11).
    pub eps_mean_coef: Vec<f64>,
    /// Signal-to-noise ratio alpha-bar_t / (1 - alpha-bar_t).
    pub snr: Vec<f64>,
}

impl NoiseSchedule {
    /// Derive every coefficient from a sequence of betas.
    pub fn from_betas(kind: ScheduleKind, betas: Vec<f64>) -> Self {
        let alphas: Vec<f64> = betas.iter().map(|b| 1.0 - b).collect();
        let alpha_bar: Vec<f64> = alphas
            .iter()
            .scan(1.0, |acc, a| {
                *acc *= a;
                Some(*acc)
            })
            .collect();
        let alpha_bar_prev: Vec<f64> = std::iter::once(1.0)
            .chain(alpha_bar.iter().copied())
            .take(betas.len())
            .collect();
        let n = betas.len();
        let map = |f: &dyn Fn(usize) -> f64| (0..n).map(f).collect::<Vec<f64>>();

        let posterior_variance =
            map(&|t| betas[t] * (1.0 - alpha_bar_prev[t]) / (1.0 - alpha_bar[t]));
        let posterior_log_variance_clipped = map(&|t| {
            let v = if t == 0 && n > 1 {
                posterior_variance[1]
            } else {
                posterior_variance[t]
            };
            v.ln()
        });
        Self {
            kind,
            sqrt_alpha_bar: map(&|t| alpha_bar[t].sqrt()),
            sqrt_one_minus_alpha_bar: map(&|t| (1.0 - alpha_bar[t]).sqrt()),
            sqrt_recip_alpha_bar: map(&|t| 1.0 / alpha_bar[t].sqrt()),
            sqrt_recip_one_minus_alpha_bar: map(&|t| 1.0 / (1.0 - alpha_bar[t]).sqrt()),
            sqrt_recipm1_alpha_bar: map(&|t| (1.0 / alpha_bar[t] - 1.0).sqrt()),
            posterior_mean_coef1: map(&|t| {
                betas[t] * alpha_bar_prev[t].sqrt() / (1.0 - alpha_bar[t])
            }),
            posterior_mean_coef2: map(&|t| {
                (1.0 - alpha_bar_prev[t]) * alphas[t].sqrt() / (1.0 - alpha_bar[t])
            }),
            sqrt_recip_alphas: map(&|t| 1.0 / alphas[t].sqrt()),
            eps_mean_coef: map(&|t| betas[t] / (alphas[t].sqrt() * (1.0 - alpha_bar[t]).sqrt())),
            snr: map(&|t| alpha_bar[t] / (1.0 - alpha_bar[t])),
            posterior_variance,
            posterior_log_variance_clipped,
            log_betas: betas.iter().map(|b| b.ln()).collect(),
            betas,
            alphas,
            alpha_bar,
            alpha_bar_prev,
        }
    }

    /// Number of diffusion steps T.
    pub fn timesteps(&self) -> usize {
        self.betas.len()
    }

    /// log SNR(t), the curve the cosine schedule was designed to make near-linear.
    pub fn log_snr(&self) -> Vec<f64> {
        self.snr.iter().map(|s| s.ln()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(kind: ScheduleKind, timesteps: usize) -> NoiseSchedule {
        ScheduleConfig {
            timesteps,
            schedule: kind,
            ..Default::default()
        }
        .init()
        .unwrap()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn linear_betas_span_the_configured_range_exactly() {
        let s = schedule(ScheduleKind::Linear, 1000);
        assert_eq!(s.betas.len(), 1000);
        assert_eq!(s.betas[0], 1e-4);
        assert!(close(s.betas[999], 0.02, 1e-12));
        assert!(close(
            s.betas[500] - s.betas[499],
            (0.02 - 1e-4) / 999.0,
            1e-9
        ));
    }

    #[test]
    fn short_linear_schedule_is_scaled_so_x_t_still_becomes_noise() {
        let scaled = schedule(ScheduleKind::Linear, 50);
        assert!(close(scaled.betas[0], 1e-4 * 20.0, 1e-12));
        assert!(close(scaled.betas[49], 0.02 * 20.0, 1e-12));
        assert!(scaled.alpha_bar[49] < 1e-3, "{}", scaled.alpha_bar[49]);

        let unscaled = ScheduleConfig {
            timesteps: 50,
            scale_to_timesteps: false,
            ..Default::default()
        }
        .init()
        .unwrap();
        // The pitfall the scaling avoids: alpha-bar_T stays near 0.6.
        assert!(unscaled.alpha_bar[49] > 0.55 && unscaled.alpha_bar[49] < 0.65);
    }

    #[test]
    fn cosine_betas_are_positive_and_clipped_at_max_beta() {
        // Its values against diffusers are in tests/reference.rs; here the two edge cases:
        // integer division of t / T would make every beta zero, and the last one is clipped.
        let s = schedule(ScheduleKind::Cosine, 1000);
        assert!(s.betas.iter().all(|&b| b > 0.0));
        assert_eq!(*s.betas.last().unwrap(), MAX_BETA);
        assert!(s.betas.iter().all(|&b| b <= MAX_BETA));
    }

    #[test]
    fn the_posterior_at_t_zero_is_x0_itself_and_its_log_variance_is_clipped() {
        // Its values for t > 0 are checked against diffusers' DDPM step in tests/reference.rs.
        for kind in ScheduleKind::ALL {
            let s = schedule(*kind, 200);
            // beta-tilde never exceeds beta_t, and alpha-bar_prev is alpha-bar one step back.
            for t in 1..200 {
                assert!(s.posterior_variance[t] <= s.betas[t], "{kind} {t}");
                assert_eq!(s.alpha_bar_prev[t], s.alpha_bar[t - 1]);
            }
            // x_0 is deterministic given x_1: beta-tilde_0 = 0, its log is clipped to
            // beta-tilde_1's, and the posterior mean is x_0 itself.
            assert_eq!(s.posterior_variance[0], 0.0);
            assert!(close(
                s.posterior_log_variance_clipped[0],
                s.posterior_variance[1].ln(),
                1e-12
            ));
            assert!(close(s.posterior_mean_coef1[0], 1.0, 1e-12));
            assert!(close(s.posterior_mean_coef2[0], 0.0, 1e-12));
        }
    }

    #[test]
    fn snr_decreases_and_sqrt_terms_are_consistent() {
        for kind in ScheduleKind::ALL {
            let s = schedule(*kind, 300);
            assert!(s.snr.windows(2).all(|w| w[1] < w[0]), "{kind}");
            for t in 0..300 {
                let sum = s.sqrt_alpha_bar[t].powi(2) + s.sqrt_one_minus_alpha_bar[t].powi(2);
                assert!(close(sum, 1.0, 1e-12));
                assert!(close(
                    s.sqrt_recip_alpha_bar[t] * s.sqrt_alpha_bar[t],
                    1.0,
                    1e-12
                ));
            }
        }
    }

    #[test]
    fn validate_names_the_field_and_range() {
        let cases: Vec<(ScheduleConfig, &str)> = vec![
            (
                ScheduleConfig {
                    timesteps: 0,
                    ..Default::default()
                },
                "diffusion.timesteps",
            ),
            (
                ScheduleConfig {
                    beta_start: 0.0,
                    ..Default::default()
                },
                "diffusion.beta_start",
            ),
            (
                ScheduleConfig {
                    beta_end: 1.5,
                    ..Default::default()
                },
                "diffusion.beta_end",
            ),
            (
                ScheduleConfig {
                    beta_end: f64::NAN,
                    ..Default::default()
                },
                "diffusion.beta_end",
            ),
            (
                ScheduleConfig {
                    beta_start: 0.03,
                    beta_end: 0.02,
                    ..Default::default()
                },
                "diffusion.beta_start",
            ),
            (
                ScheduleConfig {
                    timesteps: 10,
                    ..Default::default()
                },
                "diffusion.beta_end",
            ),
        ];
        for (config, field) in cases {
            let message = config.validate("diffusion.").unwrap_err().to_string();
            assert!(message.contains(field), "{message}");
        }
        assert!(
            ScheduleConfig {
                timesteps: 10,
                schedule: ScheduleKind::Cosine,
                ..Default::default()
            }
            .validate("")
            .is_ok()
        );
    }

    #[test]
    fn linspace_hits_both_ends_exactly() {
        let v = linspace(0.1, 0.7, 7);
        assert_eq!(v.len(), 7);
        assert_eq!(v[0], 0.1);
        assert_eq!(v[6], 0.7);
    }
}
