//! The one source of randomness for training and sampling.
//!
//! Noise and timesteps are drawn on the host from a seeded [`StdRng`] and uploaded, so the same
//! config and seed give the same numbers on every CPU backend, independent of test threads or of
//! a backend's own generator.

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// Seeded generator of Gaussian noise, timesteps and permutations.
#[derive(Debug)]
pub struct NoiseSource {
    rng: StdRng,
}

impl NoiseSource {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// `n` independent standard normal values.
    pub fn normal_vec(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect()
    }

    /// A tensor of standard normal noise of the given shape.
    pub fn normal<const D: usize>(&mut self, shape: [usize; D], device: &Device) -> Tensor<D> {
        let values = self.normal_vec(shape.iter().product());
        Tensor::<1>::from_floats(values.as_slice(), device).reshape(shape)
    }

    /// `n` timesteps drawn uniformly from `0..timesteps`.
    pub fn timesteps(&mut self, n: usize, timesteps: usize) -> Vec<usize> {
        (0..n)
            .map(|_| self.rng.random_range(0..timesteps))
            .collect()
    }

    /// `n` independent values uniform in `[0, 1)`.
    pub fn uniform_vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.rng.random::<f64>()).collect()
    }

    /// A uniformly random permutation of `0..n` (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.rng.random_range(0..=i);
            order.swap(i, j);
        }
        order
    }
}

/// Build a module with `init` (e.g. a model config's `init`), then draw every weight again from
/// a host generator seeded by `seed`, so initial weights are reproducible whatever other threads
/// do with burn's global generator (burn draws lazily, from one generator per backend).
///
/// The distributions are burn's defaults: a `Linear` layer's weight and bias are uniform in
/// `±1 / sqrt(fan_in)` (Kaiming uniform with gain 1/sqrt(3)), a convolution's likewise with
/// `fan_in = in_channels / groups * kernel area`, an `Embedding` table is N(0, 1), and a
/// normalisation layer keeps its scale 1 and shift 0.
pub fn seeded<M: Module>(device: &Device, seed: u64, init: impl FnOnce() -> M) -> M {
    let module = init();
    module.map(&mut HostInit {
        rng: StdRng::seed_from_u64(seed),
        device: device.clone(),
        container: Vec::new(),
        fan_in: 1,
    })
}

/// Replaces every float parameter with values drawn on the host.
struct HostInit {
    rng: StdRng,
    device: Device,
    /// Types of the modules entered, innermost last.
    container: Vec<String>,
    /// Fan-in of the last 2-D weight seen: a `Linear` bias shares its layer's fan-in.
    fan_in: usize,
}

impl ModuleMapper for HostInit {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.container.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.container.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        // A normalisation layer's scale and shift start at exactly 1 and 0: keep them.
        if self.container.last().is_some_and(|c| c.contains("Norm")) {
            return param;
        }
        let in_embedding = self.container.iter().rev().any(|c| c.contains("Embedding"));
        let rng = &mut self.rng;
        let fan_in = &mut self.fan_in;
        let device = self.device.clone();
        param.map(|old| {
            let dims = old.dims();
            let n: usize = dims.iter().product();
            let values: Vec<f32> = if in_embedding {
                (0..n).map(|_| StandardNormal.sample(&mut *rng)).collect()
            } else {
                // Linear weights are stored [fan_in, fan_out], convolution kernels
                // [out, in / groups, kh, kw]; a bias shares its layer's fan-in, read from the
                // weight visited just before it.
                if D == 4 {
                    *fan_in = (dims[1] * dims[2] * dims[3]).max(1);
                } else if D >= 2 {
                    *fan_in = dims[0].max(1);
                }
                let bound = 1.0 / (*fan_in as f32).sqrt();
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            };
            let fresh = Tensor::<1>::from_floats(values.as_slice(), &device).reshape(dims);
            if old.is_require_grad() {
                fresh.require_grad()
            } else {
                fresh
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;

    #[test]
    fn seeded_linear_weight_and_bias_are_uniform_within_one_over_sqrt_fan_in() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let layer = seeded(&device, 9, || LinearConfig::new(400, 64).init(&device));
        let bound = 1.0 / 20.0; // 1 / sqrt(400)
        let weight: Vec<f32> = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let bias: Vec<f32> = layer
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for values in [&weight, &bias] {
            assert!(values.iter().all(|v| v.abs() <= bound));
            // Uniform, not concentrated: the largest magnitude comes near the bound.
            assert!(values.iter().fold(0.0f32, |m, v| m.max(v.abs())) > 0.8 * bound);
        }
    }
}
