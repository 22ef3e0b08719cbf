//! Throughput benchmark: training steps/s at batch 128 and 1024 with the default model, and the
//! time to sample 2000 points through 1000 steps, on every compiled CPU backend.
//!
//! `cargo bench --bench throughput` (add `-- --quick` for fewer repeats). Prints medians over
//! repeats, after a warm-up, with the spread (min..max) so noise on a shared machine is visible.

use std::time::Instant;

use ddpm_core::prelude::*;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn spread(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Steps/s of `steps` optimizer steps at `batch`, the default config otherwise (EMA and
/// gradient clipping on, as the tutorial trains).
fn train_steps_per_second(device: &Device, batch: usize, steps: usize, seed: u64) -> f64 {
    let mut config = ExperimentConfig::default();
    config.train.batch_size = batch;
    config.train.epochs = 1;
    config.data.n_points = batch * steps;
    let schedule = config.diffusion.init().expect("default schedule");
    let data = config.data.init(seed);
    let model = seeded(device, seed, || {
        config.model.init(schedule.timesteps(), device)
    });
    let started = Instant::now();
    let trained = train(
        model,
        &schedule,
        &data,
        &config.train,
        seed,
        device,
        &mut Silent,
    )
    .expect("training runs");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(trained.history.per_step.len(), steps);
    steps as f64 / seconds
}

fn sample_seconds(device: &Device, n: usize, seed: u64) -> f64 {
    let config = ExperimentConfig::default();
    let schedule = config.diffusion.init().expect("default schedule");
    let model = seeded(device, seed, || {
        config.model.init(schedule.timesteps(), device)
    });
    let sampler = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall);
    let started = Instant::now();
    let out = sampler
        .sample(&model, n, &mut NoiseSource::new(seed), &[], device)
        .expect("sampling runs");
    assert_eq!(out.samples.len(), n);
    started.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let repeats = if quick { 3 } else { 7 };
    println!(
        "ddpm-core throughput (default model: 3 residual blocks x 128, GELU, sinusoidal embeddings 128)"
    );
    println!("repeats: {repeats}, median [min..max]\n");
    for backend in Backend::available()
        .into_iter()
        .filter(|b| *b != Backend::Wgpu)
    {
        let device = backend.device().expect("compiled backend");
        for (batch, steps) in [(128usize, 300usize), (1024, 60)] {
            train_steps_per_second(&device, batch, steps / 5, 0); // warm-up
            let runs: Vec<f64> = (0..repeats)
                .map(|r| train_steps_per_second(&device, batch, steps, r as u64))
                .collect();
            let (lo, hi) = spread(&runs);
            println!(
                "{:<8} train  batch {batch:>5}: {:>8.1} steps/s  [{lo:.1}..{hi:.1}]",
                backend.name(),
                median(runs.clone())
            );
        }
        let sample_repeats = if quick { 1 } else { 3 };
        let runs: Vec<f64> = (0..sample_repeats)
            .map(|r| sample_seconds(&device, 2000, r as u64))
            .collect();
        let (lo, hi) = spread(&runs);
        println!(
            "{:<8} sample 2000 points x 1000 steps: {:>6.2} s  [{lo:.2}..{hi:.2}]\n",
            backend.name(),
            median(runs.clone())
        );
    }
}
