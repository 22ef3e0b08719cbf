//! Throughput benchmark, one table per backend: training steps/s of the tutorial's MLP at batch
//! 128 and 1024; DDPM (1000 steps) and DDIM (50 steps) sampling of 2000 points with a *trained*
//! MLP; and the digits U-Net ([32, 64], 10 classes): training images/s at batch 128 and the time
//! to sample 64 digits by DDIM in 50 steps at guidance scale 1 (one pass a step) and 3 (two).
//! `benches/pytorch_reference.py` prints the same rows
//! for PyTorch eager.
//!
//! ```text
//! cargo bench --bench throughput [-- --quick] [--backend flex ...]
//!     [--only mlp-train|mlp-sample|unet-train|unet-sample ...]
//! cargo bench --features ndarray --bench throughput -- --backend flex --backend ndarray
//! cargo bench --features wgpu --bench throughput -- --backend wgpu
//! LIBTORCH_USE_PYTORCH=1 cargo bench --features tch --bench throughput -- --backend libtorch
//! ```
//! (`--features tch` builds with PyTorch 2.9.0's venv active: environment.md, "LibTorch".)
//!
//! Without `--backend`, every compiled CPU backend runs (wgpu only when named: on a machine
//! without a GPU it runs on a software adapter, far slower). Each row is the median over
//! repeats after a warm-up, with the spread [min..max] so noise on a shared machine shows.
//! Compare backends and PyTorch by ratios of medians over interleaved runs, not by one pair.
//! `--only` keeps the named groups of rows, e.g. to profile one workload under `perf record`.

use std::time::Instant;

/// burn's CPU backends allocate a buffer per op; glibc's malloc returns large ones to the kernel
/// and faults them back in, which costs sampling on flex about 40% (README, "Speed").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ddpm_core::data::images::load_digits;
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

/// `median [min..max]` of `runs`, each printed with `decimals`.
fn summary(runs: &[f64], decimals: usize) -> String {
    let (lo, hi) = runs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let m = median(runs.to_vec());
    format!("{m:>8.decimals$}  [{lo:.decimals$}..{hi:.decimals$}]")
}

/// Runs `measure` once to warm up, then `repeats` times.
fn repeat(repeats: usize, mut measure: impl FnMut(u64) -> f64) -> Vec<f64> {
    measure(99);
    (0..repeats).map(|r| measure(r as u64)).collect()
}

/// Trains the MLP of `config` on its data, with `seeds` (data, initial weights, training):
/// the one setup every MLP row uses. Returns the trained model, its schedule and the seconds
/// `train` took.
fn train_mlp(
    config: &ExperimentConfig,
    device: &Device,
    (data_seed, init_seed, train_seed): (u64, u64, u64),
) -> (Trained<Network>, NoiseSchedule, f64) {
    let schedule = config.diffusion.init().expect("default schedule");
    let data = config.data.init(data_seed).unwrap();
    let model = seeded(device, init_seed, || {
        config
            .model
            .init(DataShape::Points, schedule.timesteps(), device)
            .unwrap()
    });
    let started = Instant::now();
    let trained = train(
        model,
        &schedule,
        &data,
        &config.train,
        train_seed,
        device,
        &mut Silent,
    )
    .expect("training runs");
    (trained, schedule, started.elapsed().as_secs_f64())
}

/// Steps/s of `steps` optimizer steps at `batch`, the default config otherwise (EMA and
/// gradient clipping on, as the tutorial trains).
fn train_steps_per_second(device: &Device, batch: usize, steps: usize, seed: u64) -> f64 {
    let mut config = ExperimentConfig::default();
    config.train.batch_size = batch;
    config.train.epochs = 1;
    config.data.n_points = batch * steps;
    let (trained, _, seconds) = train_mlp(&config, device, (seed, seed, seed));
    assert_eq!(trained.history.per_step.len(), steps);
    steps as f64 / seconds
}

/// The default MLP trained on the moons (8000 points, 20 epochs at batch 128: 1260 steps), the
/// model the sampling rows time. Untimed.
fn trained_mlp(device: &Device) -> (Network, NoiseSchedule) {
    let mut config = ExperimentConfig::default();
    config.data.n_points = 8000;
    config.train.epochs = 20;
    config.train.batch_size = 128;
    let seeds = config.seeds();
    let (trained, schedule, _) = train_mlp(&config, device, (seeds.data, seeds.init, seeds.train));
    (trained.model, schedule)
}

fn sample_seconds(sampler: &Sampler, model: &Network, n: usize, device: &Device, seed: u64) -> f64 {
    let started = Instant::now();
    let out = sampler
        .sample(model, n, &mut NoiseSource::new(seed), &[], device)
        .expect("sampling runs");
    assert_eq!(out.samples.len(), n);
    started.elapsed().as_secs_f64()
}

/// Images/s of `steps` training steps of the digits U-Net at batch 128.
fn unet_images_per_second(
    config: &ExperimentConfig,
    digits: &ddpm_core::data::images::ImageSet,
    device: &Device,
    steps: usize,
    seed: u64,
) -> f64 {
    let schedule = config.diffusion.init().expect("schedule");
    let batch = config.train.batch_size;
    let data = digits.take(batch * steps);
    let mut train_config = config.train.clone();
    train_config.epochs = 1;
    let model: Network = config.init_model(seed, device).expect("U-Net");
    let started = Instant::now();
    let trained = train(
        model,
        &schedule,
        &data,
        &train_config,
        seed,
        device,
        &mut Silent,
    )
    .expect("training runs");
    assert_eq!(trained.history.per_step.len(), steps);
    (batch * steps) as f64 / started.elapsed().as_secs_f64()
}

/// Seconds to draw 64 digits (class i % 10) with the digits config's sampler (DDIM, 50 steps)
/// at guidance scale `w` (1: one forward pass a step; otherwise two, the classes and the null class).
fn unet_sample_seconds(config: &ExperimentConfig, w: f64, device: &Device, seed: u64) -> f64 {
    let mut config = config.clone();
    config.sampling.guidance_scale = w;
    let config = &config;
    let schedule = config.diffusion.init().expect("schedule");
    let model: Network = config.init_model(seed, device).expect("U-Net");
    let classes: Vec<usize> = (0..64).map(|i| i % 10).collect();
    let started = Instant::now();
    let out = ddpm_core::pipeline::images::sample_images(
        config,
        &schedule,
        &model,
        &classes,
        &[],
        device,
    )
    .expect("sampling runs");
    assert_eq!(out.samples.len(), 64);
    started.elapsed().as_secs_f64()
}

fn backends_asked() -> Vec<Backend> {
    let args: Vec<String> = std::env::args().collect();
    let named: Vec<Backend> = args
        .windows(2)
        .filter(|w| w[0] == "--backend")
        .map(|w| w[1].parse().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    if named.is_empty() {
        Backend::available()
            .into_iter()
            .filter(|b| *b != Backend::Wgpu)
            .collect()
    } else {
        named
    }
}

/// The row groups named by `--only` (all of them when none is named).
fn groups_asked() -> impl Fn(&str) -> bool {
    const GROUPS: [&str; 4] = ["mlp-train", "mlp-sample", "unet-train", "unet-sample"];
    let args: Vec<String> = std::env::args().collect();
    let named: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--only")
        .map(|w| w[1].clone())
        .collect();
    for name in &named {
        assert!(
            GROUPS.contains(&name.as_str()),
            "--only {name}: expected one of {GROUPS:?}"
        );
    }
    move |group| named.is_empty() || named.iter().any(|n| n == group)
}

fn main() {
    let wanted = groups_asked();
    let quick = std::env::args().any(|a| a == "--quick");
    let repeats = if quick { 3 } else { 7 };
    let sample_repeats = if quick { 1 } else { 3 };
    println!(
        "ddpm-core throughput. MLP: the default model (3 residual blocks x 128, GELU, sinusoidal \
         embeddings 128); U-Net: the digits config ([32, 64], 10 classes)"
    );
    println!("repeats: {repeats} (training), {sample_repeats} (sampling); median [min..max]\n");
    let digits = load_digits().expect("the digits ship with the crate");
    for backend in backends_asked() {
        let name = backend.name();
        let device = match backend.device() {
            Ok(device) => device,
            Err(e) => {
                println!("{name:<8} skipped: {e}\n");
                continue;
            }
        };
        println!(
            "{name:<8} on {}",
            backend.hardware().unwrap_or_else(|e| e.to_string())
        );
        for (batch, steps) in [(128usize, 300usize), (1024, 60)] {
            if !wanted("mlp-train") {
                break;
            }
            let runs = repeat(repeats, |seed| {
                train_steps_per_second(&device, batch, steps, seed)
            });
            println!(
                "{name:<8} train  batch {batch:>5}: {} steps/s",
                summary(&runs, 1)
            );
        }

        if wanted("mlp-sample") {
            mlp_sampling_rows(name, &device, repeats, sample_repeats);
        }
        let config = ExperimentConfig::digits();
        if wanted("unet-train") {
            // Enough steps for about 3 s a repeat on this backend (conv on ndarray is ~20x slower).
            let probe = unet_images_per_second(&config, &digits, &device, 2, 99);
            let steps = ((3.0 * probe / config.train.batch_size as f64) as usize)
                .clamp(2, digits.len() / config.train.batch_size);
            let runs = repeat(repeats, |seed| {
                unet_images_per_second(&config, &digits, &device, steps, seed)
            });
            println!(
                "{name:<8} unet   train 8x8 digits batch {}: {} images/s ({steps} steps a repeat)",
                config.train.batch_size,
                summary(&runs, 1)
            );
        }
        for w in [1.0, 3.0] {
            if !wanted("unet-sample") {
                break;
            }
            let runs = repeat(sample_repeats, |seed| {
                unet_sample_seconds(&config, w, &device, seed)
            });
            println!(
                "{name:<8} unet   sample 64 digits DDIM 50 w={w}: {} s",
                summary(&runs, 3)
            );
        }
        println!();
    }
}

/// DDPM (1000 steps) and DDIM (50 steps) sampling of 2000 points with a trained MLP.
fn mlp_sampling_rows(name: &str, device: &Device, repeats: usize, sample_repeats: usize) {
    let (model, schedule) = trained_mlp(device);
    let ddpm = Sampler::Ddpm(DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall));
    let runs = repeat(sample_repeats, |seed| {
        sample_seconds(&ddpm, &model, 2000, device, seed)
    });
    println!(
        "{name:<8} sample DDPM 2000 x 1000 (trained): {} s",
        summary(&runs, 2)
    );
    let ddim = Sampler::Ddim(
        DdimSampler::new(&schedule, 50, TimestepSpacing::Trailing, 0.0).expect("DDIM"),
    );
    let runs = repeat(repeats, |seed| {
        sample_seconds(&ddim, &model, 2000, device, seed)
    });
    println!(
        "{name:<8} sample DDIM 2000 x 50 (trained): {} s",
        summary(&runs, 3)
    );
}
