//! The reverse process: DDPM ancestral sampling (Ho et al. 2020, Algorithm 2).
//!
//! A sampler is a loop over [`DdpmSampler::step`], which reads like diffusers' `step`: predict
//! x_0, form the posterior mean, add noise.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::choice::choice_enum;
use crate::diffusion::{predict_x0_from_eps, q_posterior};
use crate::model::MlpDenoiser;
use crate::rng::NoiseSource;
use crate::schedule::NoiseSchedule;
use crate::{DdpmError, Result};

choice_enum! {
    /// The variance sigma_t^2 of each reverse step p(x_{t-1} | x_t).
    pub enum PosteriorVariance ("posterior variance") {
        /// sigma_t^2 = beta-tilde_t, the true posterior variance when x_0 is a point (Ho et al. sec. 3.2).
        FixedSmall = "fixed_small",
        /// sigma_t^2 = beta_t, the upper bound, optimal when x_0 ~ N(0, I).
        FixedLarge = "fixed_large",
    }
}

/// How to sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// Number of points to generate.
    pub n_samples: usize,
    /// Variance of each reverse step.
    pub variance: PosteriorVariance,
    /// Number of intermediate states kept for the reverse-process picture and the animation
    /// (evenly spaced over the chain, x_T and x_0 included); 0 keeps none.
    pub trajectory_frames: usize,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            n_samples: 2000,
            variance: PosteriorVariance::FixedSmall,
            trajectory_frames: 60,
        }
    }
}

impl SamplingConfig {
    /// Check every field; `prefix` is the path of this section in the experiment config.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        if !(1..=1_000_000).contains(&self.n_samples) {
            return Err(DdpmError::invalid(
                &format!("{prefix}n_samples"),
                self.n_samples,
                "must be in 1..=1000000",
            ));
        }
        if self.trajectory_frames == 1 || self.trajectory_frames > 1000 {
            return Err(DdpmError::invalid(
                &format!("{prefix}trajectory_frames"),
                self.trajectory_frames,
                "must be 0 or in 2..=1000 (x_T and x_0 are always both kept)",
            ));
        }
        Ok(())
    }
}

/// `frames` timesteps evenly spaced over `0..=timesteps`, from T down to 0, both ends included.
pub fn evenly_spaced_steps(timesteps: usize, frames: usize) -> Vec<usize> {
    if frames < 2 {
        return Vec::new();
    }
    let mut steps: Vec<usize> = (0..frames)
        .map(|i| {
            let frac = i as f64 / (frames - 1) as f64;
            ((1.0 - frac) * timesteps as f64).round() as usize
        })
        .collect();
    steps.dedup();
    steps
}

/// One recorded state of the reverse chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frame {
    /// The paper's time index: `T` for pure noise x_T, `0` for the final samples x_0.
    pub t: usize,
    /// The points x_t.
    pub points: Vec<[f32; 2]>,
}

/// Generated points and, if asked for, the states along the way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleOutput {
    /// The samples x_0.
    pub samples: Vec<[f32; 2]>,
    /// Recorded states, from x_T to x_0.
    pub trajectory: Vec<Frame>,
}

/// The DDPM ancestral sampler.
#[derive(Debug, Clone)]
pub struct DdpmSampler<'a> {
    schedule: &'a NoiseSchedule,
    variance: PosteriorVariance,
}

impl<'a> DdpmSampler<'a> {
    /// A sampler over `schedule` with the given reverse-step variance.
    pub fn new(schedule: &'a NoiseSchedule, variance: PosteriorVariance) -> Self {
        Self { schedule, variance }
    }

    /// sigma_t, the standard deviation of the noise added in the step from x_t to x_{t-1}.
    pub fn sigma(&self, t: usize) -> f64 {
        match self.variance {
            PosteriorVariance::FixedSmall => self.schedule.posterior_variance[t].sqrt(),
            PosteriorVariance::FixedLarge => self.schedule.betas[t].sqrt(),
        }
    }

    /// One reverse step x_t -> x_{t-1}, given the model's noise prediction `eps` at (x_t, t) and
    /// fresh standard normal `noise` (unused at t = 0).
    pub fn step<const D: usize>(
        &self,
        eps: Tensor<D>,
        t: usize,
        x_t: Tensor<D>,
        noise: Tensor<D>,
    ) -> Tensor<D> {
        // 1. predict x_0 from x_t and the predicted noise (Ho et al. eq. 15)
        let x0 = predict_x0_from_eps(self.schedule, x_t.clone(), t, eps);
        // 2. mean of the posterior q(x_{t-1} | x_t, x_0) (eq. 7); equals eq. 11's mu_theta
        let mean = q_posterior(self.schedule, x0, x_t, t).mean;
        // 3. add noise with standard deviation sigma_t, except at the last step (Algorithm 2)
        if t == 0 {
            mean
        } else {
            mean + noise.mul_scalar(self.sigma(t))
        }
    }

    /// Draw `n` points: start from x_T ~ N(0, I) and apply [`Self::step`] for t = T-1, ..., 0.
    /// States at the paper times in `record` (each in `0..=T`) are kept in the trajectory.
    pub fn sample(
        &self,
        model: &MlpDenoiser,
        n: usize,
        rng: &mut NoiseSource,
        record: &[usize],
        device: &Device,
    ) -> Result<SampleOutput> {
        let big_t = self.schedule.timesteps();
        let mut trajectory = Vec::new();
        let mut x = rng.normal([n, 2], device);
        if record.contains(&big_t) {
            trajectory.push(Frame {
                t: big_t,
                points: to_points(x.clone())?,
            });
        }
        for t in (0..big_t).rev() {
            let eps = model.forward(x.clone(), Tensor::<1, Int>::full([n], t as i64, device));
            let noise = if t > 0 {
                rng.normal([n, 2], device)
            } else {
                x.zeros_like()
            };
            x = self.step(eps, t, x, noise);
            // x now holds x_{t-1} in the paper's 1-based time, i.e. time index t.
            if record.contains(&t) {
                trajectory.push(Frame {
                    t,
                    points: to_points(x.clone())
                        .map_err(|_| DdpmError::NonFiniteSamples { timestep: t })?,
                });
            }
        }
        let samples = to_points(x).map_err(|_| DdpmError::NonFiniteSamples { timestep: 0 })?;
        Ok(SampleOutput {
            samples,
            trajectory,
        })
    }
}

/// Read a `[n, 2]` tensor back as points, refusing non-finite values.
pub fn to_points(x: Tensor<2>) -> Result<Vec<[f32; 2]>> {
    let values: Vec<f32> =
        x.into_data()
            .try_to_vec::<f32>()
            .map_err(|e| DdpmError::InvalidInput {
                field: "x",
                message: format!("cannot read tensor: {e:?}"),
            })?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(DdpmError::InvalidInput {
            field: "x",
            message: "tensor holds non-finite values".into(),
        });
    }
    Ok(values.chunks_exact(2).map(|c| [c[0], c[1]]).collect())
}

/// Build a `[n, 2]` tensor from points.
pub fn from_points(points: &[[f32; 2]], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = points.iter().flatten().copied().collect();
    Tensor::<1>::from_floats(flat.as_slice(), device).reshape([points.len(), 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ScheduleConfig;

    #[test]
    fn evenly_spaced_steps_run_from_t_to_zero() {
        assert_eq!(evenly_spaced_steps(1000, 5), vec![1000, 750, 500, 250, 0]);
        assert_eq!(evenly_spaced_steps(10, 0), Vec::<usize>::new());
        // More frames than steps: no duplicates.
        assert_eq!(evenly_spaced_steps(3, 10), vec![3, 2, 1, 0]);
    }

    #[test]
    fn step_with_true_noise_at_zero_variance_recovers_the_posterior_mean() {
        let device = crate::Backend::default_cpu().device().unwrap();
        let schedule = ScheduleConfig::default().init().unwrap();
        let sampler = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall);
        let mut rng = NoiseSource::new(3);
        let x0 = rng.normal([16, 2], &device);
        let eps = rng.normal([16, 2], &device);
        let t = 400;
        let xt = crate::diffusion::q_sample(&schedule, x0.clone(), &[t; 16], eps.clone());
        // With the true eps and no added noise, the step lands on the posterior mean given x_0.
        let stepped = sampler.step(eps, t, xt.clone(), x0.zeros_like());
        let expected = q_posterior(&schedule, x0, xt, t).mean;
        let err: f32 = (stepped - expected).abs().max().into_scalar();
        assert!(err < 1e-4, "{err}");
    }

    #[test]
    fn sigma_matches_the_chosen_variance() {
        let schedule = ScheduleConfig::default().init().unwrap();
        let small = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall);
        let large = DdpmSampler::new(&schedule, PosteriorVariance::FixedLarge);
        assert_eq!(small.sigma(500), schedule.posterior_variance[500].sqrt());
        assert_eq!(large.sigma(500), schedule.betas[500].sqrt());
        assert!(small.sigma(500) < large.sigma(500));
        assert_eq!(small.sigma(0), 0.0);
    }
}
