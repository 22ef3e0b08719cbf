//! The one source of randomness for training and sampling.
//!
//! Noise and timesteps are drawn on the host from a seeded [`StdRng`] and uploaded, so the same
//! config and seed give the same numbers on every CPU backend, independent of test threads or of
//! a backend's own generator.

use std::sync::Mutex;

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

/// burn draws initial weights from a per-backend global generator. Seeding it and drawing must
/// happen without another thread drawing in between, or the weights depend on timing.
static SEEDED_INIT: Mutex<()> = Mutex::new(());

/// Run `init` (e.g. a model's `init`) with the device's generator seeded by `seed`, holding a lock
/// so concurrent seeded initialisations cannot interleave.
pub fn seeded<T>(device: &Device, seed: u64, init: impl FnOnce() -> T) -> T {
    let _guard = SEEDED_INIT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    init()
}
