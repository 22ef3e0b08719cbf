//! The reverse process: DDPM ancestral sampling (Ho et al. 2020, Algorithm 2) here, DDIM in
//! [`ddim`].
//!
//! DDPM and DDIM differ only in their step rule ([`StepRule`]): which time indices they visit
//! and how one step moves x_t. [`run_chain`] is the one loop both share. A step reads like
//! diffusers' `step`: predict x_0, form the posterior mean, add noise.

mod ddim;
mod guidance;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use ddim::{DdimSampler, TimestepSpacing, timestep_subsequence};
pub use guidance::Guided;

use crate::choice::choice_enum;
pub use crate::diffusion::PosteriorVariance;
use crate::diffusion::{learned_log_variance, q_posterior};
use crate::display::Table;
use crate::error::{DdpmError, Result};
use crate::model::{Denoise, DenoiserOutput};
pub use crate::points::{Frame, Readout, from_points, from_rows, to_points, to_rows};
use crate::rng::NoiseSource;
use crate::schedule::NoiseSchedule;
use crate::time::PaperTime;

choice_enum! {
    /// Which reverse process generates the samples.
    pub enum SamplerKind ("sampler") {
        /// DDPM's ancestral sampler over all T steps (Ho et al. Algorithm 2).
        Ddpm = "ddpm",
        /// DDIM (Song et al. 2021) over `sampling.steps` of the T steps, noise scale `sampling.eta`.
        Ddim = "ddim",
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
    /// Clip each predicted x_0 to `[-clip_x0, clip_x0]` before forming the posterior mean
    /// (improved-diffusion's `clip_denoised`); 0 leaves it as predicted. The default is the
    /// range every toy dataset lies in ([`crate::data::DATA_RANGE`]). Schedules whose last betas
    /// approach 1 (cosine) amplify small noise-prediction errors into far outliers without it.
    pub clip_x0: f32,
    /// The reverse process: `ddpm` (all T steps) or `ddim` (fewer steps).
    pub method: SamplerKind,
    /// DDIM: number of sampling steps, in 1..=T (0 means T).
    pub steps: usize,
    /// DDIM: noise scale in [0, 1]; 0 is deterministic, 1 on all T steps is DDPM.
    pub eta: f64,
    /// DDIM: how the steps are spread over the T timesteps.
    pub spacing: TimestepSpacing,
    /// A conditional model's classifier-free guidance scale w in
    /// `eps_null + w (eps_class - eps_null)`: 0 unconditional, 1 conditional, > 1 guided.
    pub guidance_scale: f64,
    /// A conditional model's class to generate; unset: every class, in equal shares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<usize>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            n_samples: 2000,
            variance: PosteriorVariance::FixedSmall,
            trajectory_frames: 60,
            clip_x0: crate::data::DATA_RANGE,
            method: SamplerKind::Ddpm,
            steps: 50,
            eta: 0.0,
            spacing: TimestepSpacing::Trailing,
            guidance_scale: 1.0,
            class: None,
        }
    }
}

impl SamplingConfig {
    /// Check every field; `prefix` is the path of this section in the experiment config.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        // At least 2: the quality metrics compare each sample with its nearest neighbours.
        if !(2..=1_000_000).contains(&self.n_samples) {
            return Err(DdpmError::invalid(
                &format!("{prefix}n_samples"),
                self.n_samples,
                "must be in 2..=1000000",
            ));
        }
        if self.trajectory_frames == 1 || self.trajectory_frames > 1000 {
            return Err(DdpmError::invalid(
                &format!("{prefix}trajectory_frames"),
                self.trajectory_frames,
                "must be 0 or in 2..=1000 (x_T and x_0 are always both kept)",
            ));
        }
        if !(self.clip_x0.is_finite() && self.clip_x0 >= 0.0) {
            return Err(DdpmError::invalid(
                &format!("{prefix}clip_x0"),
                self.clip_x0,
                "must be finite and >= 0; 0 disables clipping",
            ));
        }
        if !(self.guidance_scale.is_finite() && self.guidance_scale >= 0.0) {
            return Err(DdpmError::invalid(
                &format!("{prefix}guidance_scale"),
                self.guidance_scale,
                "must be finite and >= 0 (0: unconditional, 1: conditional, > 1: guided)",
            ));
        }
        if !(self.eta.is_finite() && (0.0..=1.0).contains(&self.eta)) {
            return Err(DdpmError::invalid(
                &format!("{prefix}eta"),
                self.eta,
                "must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like noise)",
            ));
        }
        Ok(())
    }

    /// Check the fields that depend on the schedule's length T.
    pub fn validate_for(&self, prefix: &str, timesteps: usize) -> Result<()> {
        if self.method == SamplerKind::Ddim && self.steps > timesteps {
            return Err(DdpmError::invalid(
                &format!("{prefix}steps"),
                self.steps,
                format!("must be in 1..={timesteps} (diffusion.timesteps), or 0 for all"),
            ));
        }
        Ok(())
    }

    /// The DDPM sampler with this config's variance and clipping, over `schedule`, whatever
    /// `method` says: for the DDPM-only tools (one step's parts, the step table). To sample
    /// as configured, use [`Self::init`].
    pub fn ddpm_sampler<'a>(&self, schedule: &'a NoiseSchedule) -> DdpmSampler<'a> {
        DdpmSampler::new(schedule, self.variance).with_clip_x0(self.clip_x0)
    }

    /// The sampler `method` names (DDPM, or DDIM with its steps, spacing and eta), over
    /// `schedule`: the one entry point that samples as the config says.
    pub fn init<'a>(&self, schedule: &'a NoiseSchedule) -> Result<Sampler<'a>> {
        self.validate("sampling.")?;
        self.validate_for("sampling.", schedule.timesteps())?;
        Ok(match self.method {
            SamplerKind::Ddpm => Sampler::Ddpm(self.ddpm_sampler(schedule)),
            SamplerKind::Ddim => {
                let steps = if self.steps == 0 {
                    schedule.timesteps()
                } else {
                    self.steps
                };
                Sampler::Ddim(
                    DdimSampler::new(schedule, steps, self.spacing, self.eta)?
                        .with_clip_x0(self.clip_x0),
                )
            }
        })
    }
}

/// A configured sampler: DDPM or DDIM ([`SamplingConfig::init`]).
#[derive(Debug, Clone)]
pub enum Sampler<'a> {
    /// Ancestral sampling over all T steps.
    Ddpm(DdpmSampler<'a>),
    /// DDIM over a sub-sequence.
    Ddim(DdimSampler<'a>),
}

impl Sampler<'_> {
    /// The states (x_T down to x_0 for the samples) this sampler passes through.
    pub fn visited_times(&self) -> Vec<PaperTime> {
        self.time_indices()
            .into_iter()
            .map(PaperTime::of_index)
            .chain(std::iter::once(PaperTime::DATA))
            .collect()
    }

    /// The schedule this sampler runs on.
    pub fn schedule(&self) -> &NoiseSchedule {
        match self {
            Sampler::Ddpm(s) => s.schedule,
            Sampler::Ddim(s) => s.schedule,
        }
    }

    /// About `frames` of the visited times: x_T, then times spaced evenly in log SNR, then
    /// x_0. What to record for the reverse-process picture and the animation.
    ///
    /// Evenly spaced in t, most frames would show near-noise: the data's shape appears only
    /// once the signal-to-noise ratio nears 1, in the last quarter of a linear schedule. Even
    /// steps of log SNR put the frames where the picture changes, but not all the way down: a
    /// schedule's log SNR falls to -10 (linear, T = 1000) or far below (cosine, whose last step
    /// has SNR near 0), and every state below [`FRAME_LOG_SNR_FLOOR`] looks like the noise it
    /// started from. So after x_T the frames start at that floor.
    pub fn frame_times(&self, frames: usize) -> Vec<PaperTime> {
        let visited = self.visited_times();
        if frames < 2 || visited.len() < 2 {
            return Vec::new();
        }
        // log SNR of a noisy state; x_0 is kept as the last frame.
        let log_snr = |t: PaperTime| {
            let index = t.index().expect("only noisy states are searched");
            self.schedule().snr[index].ln()
        };
        let noisy = &visited[..visited.len() - 1];
        let high = log_snr(noisy[noisy.len() - 1]);
        let low = log_snr(noisy[0]).max(FRAME_LOG_SNR_FLOOR).min(high);
        let nearest = |target: f64| {
            *noisy
                .iter()
                .min_by(|&&a, &&b| {
                    (log_snr(a) - target)
                        .abs()
                        .total_cmp(&(log_snr(b) - target).abs())
                })
                .expect("at least one noisy time")
        };
        let between = frames.saturating_sub(2);
        let mut picked = vec![noisy[0]];
        picked.extend((0..between).map(|i| {
            let f = if between > 1 {
                i as f64 / (between - 1) as f64
            } else {
                1.0
            };
            nearest(low + (high - low) * f)
        }));
        picked.push(PaperTime::DATA);
        picked.dedup();
        picked
    }
}

impl StepRule for Sampler<'_> {
    fn time_indices(&self) -> Vec<usize> {
        match self {
            Sampler::Ddpm(s) => s.time_indices(),
            Sampler::Ddim(s) => s.time_indices(),
        }
    }

    fn adds_noise(&self, t: usize, prev: Option<usize>) -> bool {
        match self {
            Sampler::Ddpm(s) => s.adds_noise(t, prev),
            Sampler::Ddim(s) => s.adds_noise(t, prev),
        }
    }

    fn step(
        &self,
        output: DenoiserOutput,
        t: usize,
        prev: Option<usize>,
        x_t: Tensor<2>,
        noise: Tensor<2>,
    ) -> Tensor<2> {
        match self {
            Sampler::Ddpm(s) => StepRule::step(s, output, t, prev, x_t, noise),
            Sampler::Ddim(s) => StepRule::step(s, output, t, prev, x_t, noise),
        }
    }
}

/// The log SNR below which a state shows as noise: SNR e^-4 = 0.018, a signal of 14 % of the
/// noise's amplitude. [`Sampler::frame_times`] records x_T and then starts here. (At -6 the 8x8
/// digits' reverse process still spent its first five columns on what looked like the same
/// noise; their shape shows from about log SNR -2.)
pub const FRAME_LOG_SNR_FLOOR: f64 = -4.0;

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

/// Generated points (or, as `SampleOutput<Vec<f32>>`, rows of any width such as flattened
/// images) and, if asked for, the states along the way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleOutput<P = [f32; 2]> {
    /// The samples x_0.
    pub samples: Vec<P>,
    /// Recorded states, from x_T to x_0.
    pub trajectory: Vec<Frame<P>>,
}

/// The values one reverse step computes, in order.
#[derive(Debug, Clone)]
pub struct ReverseStep<const D: usize> {
    /// The state the step starts from.
    pub x_t: Tensor<D>,
    /// The noise in x_t as the model sees it: its output for an epsilon model, converted from
    /// its x_0 or v prediction otherwise.
    pub eps: Tensor<D>,
    /// x_0 predicted from x_t (eq. 15 for an epsilon model), clipped if configured.
    pub x0_pred: Tensor<D>,
    /// The posterior mean given that prediction (eq. 7).
    pub mean: Tensor<D>,
    /// The standard deviation of the added noise, per element (0 at the last step).
    pub sigma: Tensor<D>,
    /// x_{t-1} = mean + sigma * z.
    pub x_prev: Tensor<D>,
}

impl ReverseStep<2> {
    /// The step as a table: one row per quantity, one column per point.
    pub fn table(&self) -> Result<Table> {
        let rows = [
            ("x_t", &self.x_t),
            ("eps_theta(x_t, t)", &self.eps),
            ("x_0 predicted (eq. 15)", &self.x0_pred),
            ("posterior mean (eq. 7)", &self.mean),
            ("sigma_t", &self.sigma),
            ("x_(t-1) = mean + sigma_t z", &self.x_prev),
        ];
        let n = self.x_t.dims()[0];
        let mut table = Table::new(
            std::iter::once("quantity".to_string()).chain((1..=n).map(|i| format!("point {i}"))),
        );
        for (name, value) in rows {
            let cells = to_points(value.clone())?
                .into_iter()
                .map(|p| format!("({:.3}, {:.3})", p[0], p[1]));
            table.push(std::iter::once(name.to_string()).chain(cells));
        }
        Ok(table)
    }
}

/// The DDPM ancestral sampler.
#[derive(Debug, Clone)]
pub struct DdpmSampler<'a> {
    schedule: &'a NoiseSchedule,
    variance: PosteriorVariance,
    clip_x0: Option<f32>,
}

impl<'a> DdpmSampler<'a> {
    /// A sampler over `schedule` with the given (fixed) reverse-step variance; a model's learned
    /// variance, when its output has one, takes its place.
    pub fn new(schedule: &'a NoiseSchedule, variance: PosteriorVariance) -> Self {
        Self {
            schedule,
            variance,
            clip_x0: None,
        }
    }

    /// Clip predicted x_0 to `[-bound, bound]` in every step; 0 turns clipping off.
    pub fn with_clip_x0(mut self, bound: f32) -> Self {
        self.clip_x0 = (bound > 0.0).then_some(bound);
        self
    }

    /// sigma_t of the fixed variance: the standard deviation of the noise added in the step
    /// at index `t` ([`PosteriorVariance::variance`]).
    pub fn sigma(&self, t: usize) -> f64 {
        self.variance.variance(self.schedule, t).sqrt()
    }

    /// One reverse step x_t -> x_{t-1} at time index `t`, given the model's output at (x_t, t)
    /// and fresh standard normal `noise` (unused at t = 0). A learned variance in the output
    /// replaces the fixed one.
    pub fn step(
        &self,
        output: DenoiserOutput,
        t: usize,
        x_t: Tensor<2>,
        noise: Tensor<2>,
    ) -> Tensor<2> {
        let Derived {
            mean,
            learned_sigma,
            ..
        } = self.derive(output, t, x_t.clone());
        match learned_sigma {
            _ if t == 0 => mean,
            Some(sigma) => mean + noise * sigma,
            None => mean + noise.mul_scalar(self.sigma(t)),
        }
    }

    /// [`Self::step`] with its intermediate values, to look inside one step.
    pub fn step_parts(
        &self,
        output: DenoiserOutput,
        t: usize,
        x_t: Tensor<2>,
        noise: Tensor<2>,
    ) -> ReverseStep<2> {
        let Derived {
            x0_pred,
            eps,
            mean,
            learned_sigma,
        } = self.derive(output, t, x_t.clone());
        let sigma = match learned_sigma {
            _ if t == 0 => mean.zeros_like(),
            Some(sigma) => sigma,
            None => mean.zeros_like().add_scalar(self.sigma(t)),
        };
        let x_prev = mean.clone() + noise * sigma.clone();
        ReverseStep {
            x_t,
            eps,
            x0_pred,
            mean,
            sigma,
            x_prev,
        }
    }

    /// What the step from x_t derives from the model's output before it adds noise.
    fn derive(&self, output: DenoiserOutput, t: usize, x_t: Tensor<2>) -> Derived {
        // 1. predict x_0 from x_t and the model's output (Ho et al. eq. 15 for the noise)
        let (x0_pred, eps) =
            output
                .target
                .to_x0_and_eps(self.schedule, x_t.clone(), &[t], output.value);
        let x0_pred = match self.clip_x0 {
            Some(bound) => x0_pred.clamp(-bound, bound),
            None => x0_pred,
        };
        // 2. mean of the posterior q(x_{t-1} | x_t, x_0) (eq. 7); equals eq. 11's mu_theta
        let mean = q_posterior(self.schedule, x0_pred.clone(), x_t, t).mean;
        // 3. a learned noise scale sigma_t (Improved DDPM eq. 15), if the model has one
        let sigma = output.variance.map(|values| {
            learned_log_variance(self.schedule, values, &[t])
                .mul_scalar(0.5)
                .exp()
        });
        Derived {
            x0_pred,
            eps,
            mean,
            learned_sigma: sigma,
        }
    }
}

/// What one DDPM step derives from the model's output at x_t, before it adds noise.
struct Derived {
    /// x_0 predicted (eq. 15 for an epsilon model), clipped if configured.
    x0_pred: Tensor<2>,
    /// The noise the output stands for.
    eps: Tensor<2>,
    /// The posterior mean given `x0_pred` (eq. 7).
    mean: Tensor<2>,
    /// The learned noise scale, or `None` for the fixed [`DdpmSampler::sigma`].
    learned_sigma: Option<Tensor<2>>,
}

impl StepRule for DdpmSampler<'_> {
    fn time_indices(&self) -> Vec<usize> {
        (0..self.schedule.timesteps()).rev().collect()
    }

    fn adds_noise(&self, t: usize, _prev: Option<usize>) -> bool {
        t > 0
    }

    fn step(
        &self,
        output: DenoiserOutput,
        t: usize,
        _prev: Option<usize>,
        x_t: Tensor<2>,
        noise: Tensor<2>,
    ) -> Tensor<2> {
        DdpmSampler::step(self, output, t, x_t, noise)
    }
}

/// Draw `n` examples: x_T ~ N(0, I) of the model's [`Denoise::data_size`], then [`run_chain`]
/// down to x_0 (every sampler's `sample` and `sample_rows`).
pub fn sample_from_noise<R: StepRule + ?Sized, M: Denoise + ?Sized, P: Readout>(
    rule: &R,
    model: &M,
    n: usize,
    rng: &mut NoiseSource,
    record: &[PaperTime],
    device: &Device,
) -> Result<SampleOutput<P>> {
    let x_t = rng.normal([n, model.data_size()], device);
    run_chain(rule, model, x_t, rng, record)
}

/// `sample` returns 2-D points: refuse a model of other examples up front.
pub(crate) fn check_points<M: Denoise + ?Sized>(model: &M) -> Result<()> {
    match model.data_size() {
        2 => Ok(()),
        size => Err(DdpmError::InvalidInput {
            field: "model",
            message: format!(
                "`sample` draws 2-D points and this model's examples have {size} values; \
                 use `sample_rows`"
            ),
        }),
    }
}

/// What distinguishes one reverse process from another: the time indices it visits and one step
/// between two of them. DDPM visits every index; DDIM a sub-sequence.
///
/// Every sampler ([`DdpmSampler`], [`DdimSampler`] and the configured [`Sampler`]) draws
/// through the two provided methods, [`Self::sample`] and [`Self::sample_rows`], which start
/// from noise and call [`run_chain`].
pub trait StepRule {
    /// The 0-based time indices visited, noisiest first; each step goes to the next one, the
    /// last to x_0.
    fn time_indices(&self) -> Vec<usize>;

    /// Whether the step from `t` to `prev` adds fresh noise (only then is noise drawn).
    fn adds_noise(&self, t: usize, prev: Option<usize>) -> bool;

    /// One step from x_t (time index `t`) to the state at `prev` (x_0 when `None`), given the
    /// model's output at (x_t, t) and standard normal `noise`.
    fn step(
        &self,
        output: DenoiserOutput,
        t: usize,
        prev: Option<usize>,
        x_t: Tensor<2>,
        noise: Tensor<2>,
    ) -> Tensor<2>;

    /// Draw `n` points: start from x_T ~ N(0, I) and step down to x_0 ([`run_chain`]). The
    /// states at the times in `record` that the sampler visits (x_0 among them) are kept in the
    /// trajectory. A model whose examples are not 2-D points is refused: see
    /// [`Self::sample_rows`].
    fn sample<M: Denoise + ?Sized>(
        &self,
        model: &M,
        n: usize,
        rng: &mut NoiseSource,
        record: &[PaperTime],
        device: &Device,
    ) -> Result<SampleOutput>
    where
        Self: Sized,
    {
        check_points(model)?;
        sample_from_noise(self, model, n, rng, record, device)
    }

    /// [`Self::sample`] for a model of any [`Denoise::data_size`] (images, flattened), the
    /// samples read back as rows.
    fn sample_rows<M: Denoise + ?Sized>(
        &self,
        model: &M,
        n: usize,
        rng: &mut NoiseSource,
        record: &[PaperTime],
        device: &Device,
    ) -> Result<SampleOutput<Vec<f32>>>
    where
        Self: Sized,
    {
        sample_from_noise(self, model, n, rng, record, device)
    }
}

/// The reverse process: from `x` at the first of `rule`'s time indices, ask `model` and step,
/// down to x_0. The states at the times in `record` are kept in the trajectory (the first
/// state is at [`PaperTime::of_index`] of the first index, the samples at
/// [`PaperTime::DATA`]); fresh noise comes from `rng`.
///
/// `P` says how states are read back: `[f32; 2]` for points, `Vec<f32>` for rows of any width.
pub fn run_chain<R: StepRule + ?Sized, M: Denoise + ?Sized, P: Readout>(
    rule: &R,
    model: &M,
    mut x: Tensor<2>,
    rng: &mut NoiseSource,
    record: &[PaperTime],
) -> Result<SampleOutput<P>> {
    let indices = rule.time_indices();
    let device = x.device();
    let [n, width] = x.dims();
    let mut trajectory = Vec::new();
    if let Some(&first) = indices.first()
        && record.contains(&PaperTime::of_index(first))
    {
        trajectory.push(Frame {
            t: PaperTime::of_index(first),
            points: P::read(x.clone())?,
        });
    }
    for (i, &t) in indices.iter().enumerate() {
        let prev = indices.get(i + 1).copied();
        let output = model.denoise_at(x.clone(), t, None);
        let noise = if rule.adds_noise(t, prev) {
            rng.normal([n, width], &device)
        } else {
            x.zeros_like()
        };
        x = rule.step(output, t, prev, x, noise);
        // x now holds the state the next step leaves (x_0 after the last).
        let time = prev.map_or(PaperTime::DATA, PaperTime::of_index);
        if record.contains(&time) {
            trajectory.push(Frame {
                t: time,
                points: P::read(x.clone())
                    .map_err(|_| DdpmError::NonFiniteSamples { timestep: time.0 })?,
            });
        }
    }
    let samples = P::read(x).map_err(|_| DdpmError::NonFiniteSamples { timestep: 0 })?;
    Ok(SampleOutput {
        samples,
        trajectory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::Prediction;
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
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let schedule = ScheduleConfig::default().init().unwrap();
        let sampler = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall);
        let mut rng = NoiseSource::new(3);
        let x0 = rng.normal([16, 2], &device);
        let eps = rng.normal([16, 2], &device);
        let t = 400;
        let xt = crate::diffusion::q_sample(&schedule, x0.clone(), &[t; 16], eps.clone());
        // With the true eps and no added noise, the step lands on the posterior mean given x_0.
        let stepped = sampler.step(
            DenoiserOutput::new(Prediction::Epsilon, eps),
            t,
            xt.clone(),
            x0.zeros_like(),
        );
        let expected = q_posterior(&schedule, x0, xt, t).mean;
        let err: f32 = (stepped - expected).abs().max().into_scalar();
        assert!(err < 1e-4, "{err}");
    }

    #[test]
    fn clipping_bounds_the_predicted_x0() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let schedule = ScheduleConfig::default().init().unwrap();
        let sampler = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall).with_clip_x0(1.5);
        let x_t = Tensor::<2>::from_floats([[3.0f32, -3.0], [0.1, 0.2]], &device);
        let eps = DenoiserOutput::new(Prediction::Epsilon, x_t.zeros_like());
        let parts = sampler.step_parts(eps, 10, x_t.clone(), x_t.zeros_like());
        let x0: Vec<f32> = parts
            .x0_pred
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(&x0[..2], &[1.5, -1.5]);
        let table = parts.table().unwrap();
        assert_eq!(table.headers, ["quantity", "point 1", "point 2"]);
        assert_eq!(table.rows[2][1], "(1.500, -1.500)");
        // Inside the bound the prediction is untouched: x_0 = x_t / sqrt(alpha-bar) when eps = 0.
        let expected = 0.1 * schedule.sqrt_recip_alpha_bar[10] as f32;
        assert!((x0[2] - expected).abs() < 1e-6);
    }

    #[test]
    fn sigma_matches_the_chosen_variance() {
        let schedule = ScheduleConfig::default().init().unwrap();
        let small = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall);
        let large = DdpmSampler::new(&schedule, PosteriorVariance::FixedLarge);
        // Their values step by step are checked against diffusers in tests/reference.rs.
        assert!(small.sigma(500) < large.sigma(500));
        assert_eq!(small.sigma(0), 0.0);
    }

    #[test]
    fn a_perfect_prediction_of_any_target_lands_on_the_posterior_mean() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let schedule = ScheduleConfig::default().init().unwrap();
        let mut rng = NoiseSource::new(11);
        let x0 = rng.normal([16, 2], &device);
        let eps = rng.normal([16, 2], &device);
        let t = 300;
        let xt = crate::diffusion::q_sample(&schedule, x0.clone(), &[t; 16], eps.clone());
        let expected = q_posterior(&schedule, x0.clone(), xt.clone(), t).mean;
        for &target in Prediction::ALL {
            let sampler = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall);
            let output = target.target(&schedule, x0.clone(), eps.clone(), &[t]);
            let output = DenoiserOutput::new(target, output);
            let parts = sampler.step_parts(output, t, xt.clone(), x0.zeros_like());
            let err: f32 = (parts.mean - expected.clone()).abs().max().into_scalar();
            assert!(err < 1e-4, "{target}: {err}");
            let eps_err: f32 = (parts.eps - eps.clone()).abs().max().into_scalar();
            assert!(eps_err < 1e-3, "{target}: eps {eps_err}");
        }
    }

    #[test]
    fn a_learned_variance_sets_sigma_between_beta_tilde_and_beta() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let schedule = ScheduleConfig::default().init().unwrap();
        let head = crate::model::Head {
            variance: crate::model::ModelVariance::LearnedRange,
            ..Default::default()
        };
        let model = crate::rng::seeded(&device, 1, || {
            crate::model::MlpConfig::default().init(head, 1000, &device)
        });
        let sampler = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall);
        let t = 200;
        let x_t = Tensor::<2>::zeros([2, 2], &device);
        let sigma_for =
            |v: f32| -> Vec<f32> {
                let eps = Tensor::<2>::zeros([2, 2], &device);
                let output = DenoiserOutput::new(Prediction::Epsilon, eps)
                    .with_variance(Tensor::full([2, 2], v, &device));
                let parts = sampler.step_parts(output, t, x_t.clone(), x_t.zeros_like());
                parts.sigma.into_data().try_to_vec::<f32>().unwrap()
            };
        let low = f64::from(sigma_for(-1.0)[0]);
        let high = f64::from(sigma_for(1.0)[0]);
        assert!(
            (low - schedule.posterior_variance[t].sqrt()).abs() < 1e-5,
            "{low}"
        );
        assert!((high - schedule.betas[t].sqrt()).abs() < 1e-5, "{high}");
        // The sampler draws from it: a whole chain runs and gives finite points.
        let out = sampler
            .sample(&model, 8, &mut NoiseSource::new(1), &[], &device)
            .unwrap();
        assert_eq!(out.samples.len(), 8);
    }

    #[test]
    fn the_trajectory_holds_the_states_at_the_times_asked_for() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let schedule = ScheduleConfig {
            timesteps: 50,
            ..Default::default()
        }
        .init()
        .unwrap();
        let exact = crate::model::GaussianDenoiser::new([2.0, 0.0], 0.1, &schedule);
        let sampler = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall);
        let out = sampler
            .sample(
                &exact,
                500,
                &mut NoiseSource::new(4),
                &[50, 25, 1, 0].map(PaperTime),
                &device,
            )
            .unwrap();
        let times: Vec<usize> = out.trajectory.iter().map(|f| f.t.0).collect();
        assert_eq!(times, [50, 25, 1, 0]);
        // x_T is the first noise drawn; x_0 is the samples; x_1 is already near the data.
        let first = to_points(NoiseSource::new(4).normal([500, 2], &device)).unwrap();
        assert_eq!(out.trajectory[0].points, first);
        assert_eq!(out.trajectory[3].points, out.samples);
        let mean_x = |points: &[[f32; 2]]| points.iter().map(|p| p[0]).sum::<f32>() / 500.0;
        assert!((mean_x(&out.trajectory[2].points) - 2.0).abs() < 0.05);
        assert!(mean_x(&out.trajectory[0].points).abs() < 0.2);
    }

    #[test]
    fn configured_samplers_record_only_times_they_visit() {
        let schedule = ScheduleConfig::default().init().unwrap();
        let ddpm = SamplingConfig::default().init(&schedule).unwrap();
        assert!(ddpm.frame_times(1).is_empty() && ddpm.frame_times(0).is_empty());
        let frames = ddpm.frame_times(6);
        assert_eq!(
            (frames[0], frames[frames.len() - 1]),
            (PaperTime(1000), PaperTime::DATA)
        );
        assert_eq!(frames.len(), 6);
        assert!(frames.windows(2).all(|w| w[0] > w[1]), "{frames:?}");
        // After x_T, even steps of log SNR from the floor (the linear schedule reaches -10 at
        // t = 1000) to the least noisy step: consecutive frames differ by about the same log SNR.
        let log_snr: Vec<f64> = frames[1..5]
            .iter()
            .map(|&t| schedule.snr[t.index().unwrap()].ln())
            .collect();
        assert!(
            (log_snr[0] - FRAME_LOG_SNR_FLOOR).abs() < 0.05,
            "{log_snr:?}"
        );
        let gap = (log_snr[3] - log_snr[0]) / 3.0;
        for w in log_snr.windows(2) {
            assert!((w[1] - w[0] - gap).abs() < 0.05 * gap.abs(), "{log_snr:?}");
        }
        // ... which puts more frames at small t than even steps of t would.
        assert!(
            frames[3] < PaperTime(250) && frames[2] < PaperTime(500),
            "{frames:?}"
        );
        let config = SamplingConfig {
            method: SamplerKind::Ddim,
            steps: 10,
            ..Default::default()
        };
        let ddim = config.init(&schedule).unwrap();
        let visited = ddim.visited_times();
        assert_eq!(visited.len(), 11);
        assert_eq!(
            (visited[0], visited[10]),
            (PaperTime(1000), PaperTime::DATA)
        );
        let frames = ddim.frame_times(4);
        assert_eq!(frames.len(), 4);
        assert!(frames.iter().all(|t| visited.contains(t)));
        // steps = 0 means all T; more than T is refused, naming the field.
        let all = SamplingConfig {
            steps: 0,
            ..config.clone()
        }
        .init(&schedule)
        .unwrap();
        assert_eq!(all.visited_times().len(), 1001);
        let err = SamplingConfig {
            steps: 1001,
            ..config
        }
        .init(&schedule)
        .unwrap_err();
        assert!(err.to_string().contains("sampling.steps"), "{err}");
    }
}
