//! DDIM sampling (Song et al. 2021): a non-Markovian reverse process with the same marginals
//! q(x_t | x_0) as DDPM, run on a sub-sequence of the timesteps. `eta = 0` is deterministic (an
//! ODE that can also be run backwards: [`DdimSampler::invert`]); `eta = 1` on the full sequence
//! is DDPM's ancestral sampler.

use burn::prelude::*;

use super::{SampleOutput, StepRule, run_chain};
use crate::choice::choice_enum;
use crate::diffusion::{Prediction, eps_from_x0};
use crate::error::{DdpmError, Result};
use crate::model::{Denoise, DenoiserOutput};
use crate::rng::NoiseSource;
use crate::schedule::NoiseSchedule;
use crate::time::PaperTime;

choice_enum! {
    /// How `n` sampling steps are spread over the T training timesteps (diffusers'
    /// `timestep_spacing`).
    pub enum TimestepSpacing ("timestep spacing") {
        /// round(linspace(0, T - 1, n)): both ends of the chain included.
        Linspace = "linspace",
        /// 0, k, 2k, ... with k = T / n (integer division): the first step is below T - 1.
        Leading = "leading",
        /// round(T - i T / n) - 1: starts at T - 1, where DDPM starts.
        Trailing = "trailing",
    }
}

/// The 0-based timesteps of `n` sampling steps out of `timesteps`, in sampling order (from
/// the noisiest down).
pub fn timestep_subsequence(
    timesteps: usize,
    n: usize,
    spacing: TimestepSpacing,
) -> Result<Vec<usize>> {
    if n == 0 || n > timesteps {
        return Err(DdpmError::invalid(
            "steps",
            n,
            format!("must be in 1..={timesteps} (the schedule's T)"),
        ));
    }
    // As diffusers' `set_timesteps` computes them with numpy: a float step times i (the
    // order of the operations decides which values land on .5), rounded half to even.
    let big_t = timesteps as f64;
    let mut steps: Vec<usize> = match spacing {
        TimestepSpacing::Linspace if n == 1 => vec![0],
        TimestepSpacing::Linspace => {
            let step = (big_t - 1.0) / (n - 1) as f64;
            (0..n)
                .map(|i| (i as f64 * step).round_ties_even() as usize)
                .collect()
        }
        TimestepSpacing::Leading => (0..n).map(|i| i * (timesteps / n)).collect(),
        // numpy's arange(T, 0, -T/n) fills value i as T + i * delta with delta = (T - T/n) - T
        // (not -T/n itself). It can also return n + 1 values through float error (T = 1000,
        // n = 61), the last rounding to step -1; this takes exactly n.
        TimestepSpacing::Trailing => {
            let delta = (big_t - big_t / n as f64) - big_t;
            (0..n)
                .map(|i| (big_t + i as f64 * delta).round_ties_even() as usize - 1)
                .collect()
        }
    };
    steps.sort_unstable();
    steps.dedup();
    steps.reverse();
    Ok(steps)
}

/// The DDIM sampler over a sub-sequence of a schedule's timesteps.
#[derive(Debug, Clone)]
pub struct DdimSampler<'a> {
    pub(super) schedule: &'a NoiseSchedule,
    steps: Vec<usize>,
    eta: f64,
    clip_x0: Option<f32>,
}

impl<'a> DdimSampler<'a> {
    /// `n_steps` steps spread by `spacing`, with noise scale `eta` in `[0, 1]`.
    pub fn new(
        schedule: &'a NoiseSchedule,
        n_steps: usize,
        spacing: TimestepSpacing,
        eta: f64,
    ) -> Result<Self> {
        if !(eta.is_finite() && (0.0..=1.0).contains(&eta)) {
            return Err(DdpmError::invalid(
                "eta",
                eta,
                "must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like)",
            ));
        }
        Ok(Self {
            steps: timestep_subsequence(schedule.timesteps(), n_steps, spacing)?,
            schedule,
            eta,
            clip_x0: None,
        })
    }

    /// Clip predicted x_0 to `[-bound, bound]` in every step; 0 turns clipping off.
    pub fn with_clip_x0(mut self, bound: f32) -> Self {
        self.clip_x0 = (bound > 0.0).then_some(bound);
        self
    }

    /// The noise scale eta.
    pub fn eta(&self) -> f64 {
        self.eta
    }

    /// The 0-based timesteps visited, from the noisiest down.
    pub fn steps(&self) -> &[usize] {
        &self.steps
    }

    /// alpha-bar at a 0-based step, or 1 for "before the first step" (x_0 itself).
    fn alpha_bar(&self, t: Option<usize>) -> f64 {
        t.map_or(1.0, |t| self.schedule.alpha_bar[t])
    }

    /// sigma of the step from `t` to `prev` (Song et al. eq. 16):
    /// eta sqrt((1 - ab_prev) / (1 - ab_t)) sqrt(1 - ab_t / ab_prev).
    pub fn sigma(&self, t: usize, prev: Option<usize>) -> f64 {
        let (ab, ab_prev) = (self.alpha_bar(Some(t)), self.alpha_bar(prev));
        self.eta
            * ((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev))
                .max(0.0)
                .sqrt()
    }

    /// One step from x_t to x_prev (`prev` = `None` lands on x_0), given the model's `output` at
    /// (x_t, t) and fresh standard normal `noise` (unused when sigma is 0). DDIM has no use for
    /// a learned variance: eta sets the noise.
    pub fn step(
        &self,
        output: DenoiserOutput,
        t: usize,
        prev: Option<usize>,
        x_t: Tensor<2>,
        noise: Tensor<2>,
    ) -> Tensor<2> {
        // 1. predict x_0 (Song et al. eq. 12, "predicted x_0"); when it is clipped, the noise
        //    is re-derived from the clipped x_0 so that both terms below agree (as diffusers does)
        let (x0, eps) = output
            .target
            .to_x0_and_eps(self.schedule, x_t.clone(), &[t], output.value);
        let (x0, eps) = match self.clip_x0 {
            Some(bound) => {
                let x0 = x0.clamp(-bound, bound);
                let eps = eps_from_x0(self.schedule, x_t, x0.clone(), &[t]);
                (x0, eps)
            }
            None => (x0, eps),
        };
        // 2. the direction pointing to x_t, sqrt(1 - ab_prev - sigma^2) eps
        let sigma = self.sigma(t, prev);
        let ab_prev = self.alpha_bar(prev);
        let direction = eps.mul_scalar((1.0 - ab_prev - sigma * sigma).max(0.0).sqrt());
        // 3. x_prev = sqrt(ab_prev) x_0 + direction + sigma z
        let x_prev = x0.mul_scalar(ab_prev.sqrt()) + direction;
        if sigma > 0.0 {
            x_prev + noise.mul_scalar(sigma)
        } else {
            x_prev
        }
    }

    /// [`StepRule::sample`] from a given starting state `x` (at the noisiest step), e.g. the result
    /// of [`Self::invert`].
    /// `P` is how the states are read back: `[f32; 2]` for points, `Vec<f32>` for rows.
    pub fn sample_from<M: Denoise + ?Sized, P: crate::points::Readout>(
        &self,
        model: &M,
        x: Tensor<2>,
        rng: &mut NoiseSource,
        record: &[PaperTime],
    ) -> Result<SampleOutput<P>> {
        run_chain(self, model, x, rng, record)
    }

    /// Deterministic DDIM inversion: run the eta = 0 ODE from data `x0` up to the noisiest step
    /// of the sub-sequence, evaluating the model at each target step with the current state
    /// (the usual approximation). Sampling from the result with the same sampler returns close
    /// to `x0`.
    pub fn invert<M: Denoise + ?Sized>(&self, model: &M, x0: Tensor<2>) -> Result<Tensor<2>> {
        if self.eta != 0.0 {
            return Err(DdpmError::invalid(
                "eta",
                self.eta,
                "must be 0 to invert: only deterministic DDIM is invertible",
            ));
        }
        let prediction = model.prediction();
        let mut x = x0;
        let mut from: Option<usize> = None;
        for &t in self.steps.iter().rev() {
            let output = model.denoise_at(x.clone(), t, None).value;
            // Read the output at the level x is at now (as diffusers' DDIMInverseScheduler does),
            // then move x_0 and the noise to step t.
            let (x0_pred, eps) = match (from, prediction) {
                (Some(level), _) => {
                    prediction.to_x0_and_eps(self.schedule, x.clone(), &[level], output)
                }
                // x is the data itself (alpha-bar = 1): x_0 = x, and eps or v is the noise
                (None, Prediction::Epsilon | Prediction::V) => (x.clone(), output),
                // an x_0 model says nothing about the noise at alpha-bar = 1: read it at step 0
                (None, Prediction::X0) => {
                    prediction.to_x0_and_eps(self.schedule, x.clone(), &[0], output)
                }
            };
            let ab = self.alpha_bar(Some(t));
            x = x0_pred.mul_scalar(ab.sqrt()) + eps.mul_scalar((1.0 - ab).sqrt());
            from = Some(t);
        }
        Ok(x)
    }
}

impl StepRule for DdimSampler<'_> {
    fn time_indices(&self) -> Vec<usize> {
        self.steps.clone()
    }

    fn adds_noise(&self, t: usize, prev: Option<usize>) -> bool {
        self.sigma(t, prev) > 0.0
    }

    fn step(
        &self,
        output: DenoiserOutput,
        t: usize,
        prev: Option<usize>,
        x_t: Tensor<2>,
        noise: Tensor<2>,
    ) -> Tensor<2> {
        DdimSampler::step(self, output, t, prev, x_t, noise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataShape;
    use crate::model::{Head, MlpConfig};
    use crate::rng::seeded;
    use crate::sampling::{DdpmSampler, PosteriorVariance, from_points};
    use crate::schedule::ScheduleConfig;

    fn eps_out(eps: Tensor<2>) -> DenoiserOutput {
        DenoiserOutput::new(Prediction::Epsilon, eps)
    }

    fn device() -> Device {
        crate::backend::Backend::default_cpu().device().unwrap()
    }

    fn max_abs_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn spacings_match_the_reference_formulas() {
        use TimestepSpacing::*;
        let steps = |n, s| timestep_subsequence(1000, n, s).unwrap();
        assert_eq!(
            steps(10, Linspace),
            [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]
        );
        assert_eq!(
            steps(10, Leading),
            [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
        );
        assert_eq!(
            steps(10, Trailing),
            [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
        );
        for &spacing in TimestepSpacing::ALL {
            let all = timestep_subsequence(50, 50, spacing).unwrap();
            assert_eq!(all, (0..50).rev().collect::<Vec<_>>(), "{spacing}");
        }
        let err = timestep_subsequence(50, 51, Linspace)
            .unwrap_err()
            .to_string();
        assert!(err.contains("steps") && err.contains("1..=50"), "{err}");
        assert!(timestep_subsequence(50, 0, Trailing).is_err());
    }

    #[test]
    fn eta_one_on_consecutive_steps_is_exactly_the_ddpm_step() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let ddim = DdimSampler::new(&schedule, 1000, TimestepSpacing::Linspace, 1.0).unwrap();
        let ddpm = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall);
        let mut rng = NoiseSource::new(11);
        let (x_t, eps, z) = (
            rng.normal([32, 2], &device),
            rng.normal([32, 2], &device),
            rng.normal([32, 2], &device),
        );
        for t in [1usize, 10, 500, 999] {
            // sigma_t(eta = 1) is the posterior standard deviation sqrt(beta-tilde_t).
            assert!(
                (ddim.sigma(t, Some(t - 1)) - ddpm.sigma(t)).abs() < 1e-12,
                "t={t}"
            );
            let a = ddim.step(eps_out(eps.clone()), t, Some(t - 1), x_t.clone(), z.clone());
            let b = ddpm.step(eps_out(eps.clone()), t, x_t.clone(), z.clone());
            assert!(max_abs_diff(a, b) < 1e-4, "t={t}");
        }
    }

    #[test]
    fn eta_one_on_the_full_sequence_reproduces_ddpm_sampling() {
        let device = device();
        let schedule = ScheduleConfig {
            timesteps: 50,
            ..Default::default()
        }
        .init()
        .unwrap();
        let model = seeded(&device, 5, || {
            MlpConfig::default().init(Head::default(), 50, &device)
        });
        let ddim = DdimSampler::new(&schedule, 50, TimestepSpacing::Linspace, 1.0)
            .unwrap()
            .with_clip_x0(4.0);
        let ddpm = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall).with_clip_x0(4.0);
        let a = ddim
            .sample(&model, 256, &mut NoiseSource::new(9), &[], &device)
            .unwrap();
        let b = ddpm
            .sample(&model, 256, &mut NoiseSource::new(9), &[], &device)
            .unwrap();
        let diff = a
            .samples
            .iter()
            .zip(&b.samples)
            .map(|(p, q)| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()))
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-3, "{diff}");
    }

    #[test]
    fn deterministic_ddim_ignores_the_noise_and_rejects_bad_eta() {
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let ddim = DdimSampler::new(&schedule, 20, TimestepSpacing::Trailing, 0.0).unwrap();
        assert_eq!(ddim.sigma(999, Some(949)), 0.0);
        let mut rng = NoiseSource::new(2);
        let (x, eps, z) = (
            rng.normal([8, 2], &device),
            rng.normal([8, 2], &device),
            rng.normal([8, 2], &device),
        );
        let a = ddim.step(eps_out(eps.clone()), 999, Some(949), x.clone(), z);
        let b = ddim.step(eps_out(eps), 999, Some(949), x.clone(), x.zeros_like());
        assert_eq!(max_abs_diff(a, b), 0.0);
        let err = DdimSampler::new(&schedule, 20, TimestepSpacing::Trailing, 1.5).unwrap_err();
        assert!(err.to_string().contains("eta"), "{err}");
        let stochastic = DdimSampler::new(&schedule, 20, TimestepSpacing::Trailing, 0.5).unwrap();
        assert!(
            stochastic
                .invert(
                    &seeded(&device, 0, || MlpConfig::default().init(
                        Head::default(),
                        1000,
                        &device
                    )),
                    x
                )
                .is_err()
        );
    }

    #[test]
    fn ddim_inversion_round_trips_data_through_noise_more_closely_with_more_steps() {
        // For a noise-predicting and a velocity-predicting model: inversion reads a v output at
        // the level x is at, so both must round-trip.
        for target in [Prediction::Epsilon, Prediction::V] {
            let errors = inversion_errors(target);
            eprintln!("{target}: mean abs round-trip errors {errors:?}");
            // Measured (epsilon): 0.048, 0.018, 0.009. The inversion evaluates the model one
            // step ahead, an error that shrinks with the step size.
            assert!(
                errors[0] > errors[1] && errors[1] > errors[2],
                "{target}: {errors:?}"
            );
            assert!(errors[1] < 0.05, "{target}, 50 steps: {}", errors[1]);
        }
    }

    /// Mean absolute error of x_0 -> invert -> sample, at 20, 50 and 100 DDIM steps.
    fn inversion_errors(target: Prediction) -> Vec<f32> {
        let device = device();
        let mut config = crate::config::ExperimentConfig::quick();
        config.diffusion.timesteps = 100;
        config.data.n_points = 2000;
        config.train.epochs = 60;
        config.model.prediction = target;
        let schedule = config.diffusion.init().unwrap();
        let data = config.data.init(1).unwrap();
        let model = seeded(&device, 2, || {
            config.model.init(DataShape::Points, 100, &device).unwrap()
        });
        let trained = crate::train::train(
            model,
            &schedule,
            &data,
            &config.train,
            3,
            &device,
            &mut crate::train::Silent,
        )
        .unwrap();
        let x0 = from_points(&data.points[..256], &device);
        let mut errors: Vec<f32> = Vec::new();
        for steps in [20, 50, 100] {
            let ddim = DdimSampler::new(&schedule, steps, TimestepSpacing::Linspace, 0.0).unwrap();
            let x_t = ddim.invert(&trained.model, x0.clone()).unwrap();
            // The inverted points look like noise: spread near 1 (measured 0.90-0.94) ...
            let spread: f32 = x_t.clone().square().mean().sqrt().into_scalar();
            assert!(
                (0.75..1.25).contains(&spread),
                "{target}, {steps} steps: spread {spread}"
            );
            // ... and sampling back from them lands near where they started.
            let back = ddim
                .sample_from(&trained.model, x_t, &mut NoiseSource::new(0), &[])
                .unwrap();
            let back = from_points(&back.samples, &device);
            errors.push((back - x0.clone()).abs().mean().into_scalar());
        }
        errors
    }

    #[test]
    fn a_perfect_prediction_of_any_target_jumps_to_the_forward_marginal() {
        // With the true x_0 and noise, a deterministic DDIM jump from t to t' lands exactly on
        // sqrt(ab_t') x_0 + sqrt(1 - ab_t') eps: the same noise, less of it.
        let device = device();
        let schedule = ScheduleConfig::default().init().unwrap();
        let mut rng = NoiseSource::new(12);
        let x0 = rng.normal([16, 2], &device);
        let eps = rng.normal([16, 2], &device);
        let (t, prev) = (600, 250);
        let x_t = crate::diffusion::q_sample(&schedule, x0.clone(), &[t], eps.clone());
        let expected = crate::diffusion::q_sample(&schedule, x0.clone(), &[prev], eps.clone());
        for &target in Prediction::ALL {
            let sampler = DdimSampler::new(&schedule, 10, TimestepSpacing::Trailing, 0.0).unwrap();
            let output = target.target(&schedule, x0.clone(), eps.clone(), &[t]);
            let jumped = sampler.step(
                DenoiserOutput::new(target, output),
                t,
                Some(prev),
                x_t.clone(),
                x_t.zeros_like(),
            );
            let err = max_abs_diff(jumped, expected.clone());
            assert!(err < 1e-4, "{target}: {err}");
        }
    }
}
