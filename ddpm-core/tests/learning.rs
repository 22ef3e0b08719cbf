//! Proof that the DDPM learns: trained samples beat an untrained network's samples on energy
//! distance and MMD by a wide margin, and come within a stated factor of the floor.
//!
//! How the bars were set: `seed_spread` (below, run by hand) trains every test's config at seeds
//! 0-4, and three regressions: a tenth of the training (4 epochs), no time embedding, and x_0
//! prediction at 4 epochs. Each run is also compared with a Gaussian blob that has the data's
//! mean and covariance ([`moment_matched_blob`]): what a model that learned two moments and no
//! structure would draw.
//!
//! Seed noise is large at this budget, and energy distance against its floor is the noisiest
//! figure (moons with epsilon: 1.8x to 8.4x the floor, while the blob scores 4.8x to 14x: energy
//! distance at 1000 points cannot tell them apart). The bars that separate learning from not
//! learning are the MMD ones, above all the blob's MMD over the trained model's:
//!
//! | config (moons unless said) | ED / floor (bar) | untrained / trained MMD (bar) | blob / trained MMD (bar) |
//! |---|---|---|---|
//! | epsilon | 1.8-8.4 (15) | 24-36 (10) | 4.1-6.1 (2.5) |
//! | x_0, 120 epochs | 2.2-14.6 (30) | 55-102 (20) | 1.45-2.33 (1.2) |
//! | v | 1.4-11.3 (20) | 6-7 (3.5) | 3.7-4.8 (2.5) |
//! | min-SNR | 2.5-13.9 (25) | 11-13 (5) | 2.0-2.3 (1.5) |
//! | learned variance | 1.8-7.6 (15) | 21-34 (10) | 4.2-5.7 (2.5) |
//! | eight Gaussians, epsilon | 0.5-7.6 (15) | 32-46 (10) | 13.7-21.4 (7) |
//! | x_0, 40 epochs (not a test) | 5.9-28.3 | 27-50 | 0.71-1.16 |
//! | regression: epsilon, no time embedding | 23.5-143 | 2 | 0.35-0.41 |
//! | regression: epsilon, 4 epochs | 13600-79800 | 1 | 0.18-0.21 |
//! | regression: x_0, 4 epochs | 172-910 | 1 | |
//! | regression: eight Gaussians, 4 epochs | 4900-72000 | 1 | |
//!
//! Every bar sits below the worst of five seeds (by 1.2x to 2x) and above every regression (by
//! 3x or more). The MMD bars are what a regression fails; the energy-distance bar only catches
//! gross failures. x_0 prediction needs 120 epochs to beat the blob at all: at the 40 epochs the
//! other targets use, its samples are no closer to the moons than the blob.

use ddpm_core::prelude::*;

struct Outcome {
    trained: QualityReport,
    untrained: QualityReport,
    /// A Gaussian blob with the reference's mean and covariance ([`moment_matched_blob`]).
    blob: QualityReport,
    model: Network,
    untrained_model: Network,
    schedule: NoiseSchedule,
    reference: Dataset2d,
}

/// Train briefly on `dataset` (with `edit` applied to the config) and score trained and
/// untrained samples against a held-out draw.
fn learn(dataset: DatasetKind, epochs: usize, edit: impl FnOnce(&mut ExperimentConfig)) -> Outcome {
    let device = Backend::default_cpu().device().unwrap();
    let mut config = ExperimentConfig::default();
    config.data.dataset = dataset.into();
    config.data.n_points = 4000;
    config.diffusion.timesteps = 200;
    config.train.epochs = epochs;
    config.train.batch_size = 128;
    edit(&mut config);
    let seeds = config.seeds();
    let schedule = config.diffusion.init().unwrap();
    let data = config.data.init(seeds.data).unwrap();
    let init = || {
        seeded(&device, seeds.init, || {
            config
                .model
                .init(DataShape::Points, schedule.timesteps(), &device)
                .unwrap()
        })
    };
    let trained = train(
        init(),
        &schedule,
        &data,
        &config.train,
        seeds.train,
        &device,
        &mut Silent,
    )
    .unwrap();

    let n = 1000;
    let sampler = DdpmSampler::new(&schedule, PosteriorVariance::FixedSmall);
    let good = sampler
        .sample(
            &trained.model,
            n,
            &mut NoiseSource::new(seeds.sample),
            &[],
            &device,
        )
        .unwrap();
    let bad = sampler
        .sample(
            &init(),
            n,
            &mut NoiseSource::new(seeds.sample),
            &[],
            &device,
        )
        .unwrap();
    let reference = Dataset2d::generate(dataset, n, seeds.eval);
    let floor = Dataset2d::generate(dataset, n, seeds.eval + 1);
    let blob = moment_matched_blob(&reference.points, seeds.sample);
    Outcome {
        trained: QualityReport::compute(&good.samples, &reference.points, &floor.points).unwrap(),
        untrained: QualityReport::compute(&bad.samples, &reference.points, &floor.points).unwrap(),
        blob: QualityReport::compute(&blob, &reference.points, &floor.points).unwrap(),
        model: trained.model,
        untrained_model: init(),
        schedule,
        reference,
    }
}

/// What a learning test asks of its model; see the module comment for how each bar was set.
struct Bars {
    /// Largest allowed energy distance of the trained samples, in multiples of the floor.
    max_ratio_to_floor: f64,
    /// Smallest allowed MMD of the untrained baseline, in multiples of the trained model's.
    min_mmd_gain: f64,
    /// Smallest allowed MMD of a Gaussian blob with the data's mean and covariance, in
    /// multiples of the trained model's: the model must have learned more than two moments.
    min_blob_gain: f64,
}

fn check(dataset: DatasetKind, epochs: usize, bars: Bars) -> Outcome {
    check_with(dataset, epochs, bars, |_| {})
}

fn check_with(
    dataset: DatasetKind,
    epochs: usize,
    bars: Bars,
    edit: impl FnOnce(&mut ExperimentConfig),
) -> Outcome {
    let o = learn(dataset, epochs, edit);
    let (t, u) = (o.trained.energy_distance, o.untrained.energy_distance);
    let mmd_gain = o.untrained.mmd_rbf.value / o.trained.mmd_rbf.value;
    let blob_gain = o.blob.mmd_rbf.value / o.trained.mmd_rbf.value;
    eprintln!(
        "{dataset}: energy distance trained {:.5} untrained {:.5} floor {:.5} ({:.1}x floor, {:.0}x better); \
         mmd trained {:.6} untrained {:.6} floor {:.6} ({mmd_gain:.1}x better, {blob_gain:.2}x better than a blob)",
        t.value,
        u.value,
        t.floor,
        t.ratio_to_floor(),
        u.value / t.value,
        o.trained.mmd_rbf.value,
        o.untrained.mmd_rbf.value,
        o.trained.mmd_rbf.floor,
    );
    assert!(
        u.value > 5.0 * t.value,
        "{dataset}: trained ED {} is not 5x below untrained {}",
        t.value,
        u.value
    );
    assert!(
        mmd_gain > bars.min_mmd_gain,
        "{dataset}: trained MMD {} is not {}x below untrained {}",
        o.trained.mmd_rbf.value,
        bars.min_mmd_gain,
        o.untrained.mmd_rbf.value
    );
    assert!(
        blob_gain > bars.min_blob_gain,
        "{dataset}: trained MMD {} is not {}x below a moment-matched blob's {}",
        o.trained.mmd_rbf.value,
        bars.min_blob_gain,
        o.blob.mmd_rbf.value
    );
    assert!(
        t.ratio_to_floor() < bars.max_ratio_to_floor,
        "{dataset}: trained ED is {:.1}x its floor, allowed {}x",
        t.ratio_to_floor(),
        bars.max_ratio_to_floor
    );
    o
}

#[test]
fn trained_moons_beat_untrained_by_5x_and_approach_the_floor() {
    check(
        DatasetKind::Moons,
        40,
        Bars {
            max_ratio_to_floor: 15.0,
            min_mmd_gain: 10.0,
            min_blob_gain: 2.5,
        },
    );
}

/// x_0 prediction is the weakest target (at 40 epochs no better than a Gaussian blob, see the
/// table above; hence 120 here): near t = 0 the network itself must reproduce x_t to within
/// the noise, while an epsilon or v model gets x_t for free from the conversion and predicts a
/// small correction.
#[test]
fn an_x0_predicting_model_learns_moons() {
    let bars = Bars {
        max_ratio_to_floor: 30.0,
        min_mmd_gain: 20.0,
        min_blob_gain: 1.2,
    };
    check_with(DatasetKind::Moons, 120, bars, |c| {
        c.model.prediction = Prediction::X0
    });
}

/// A v model's untrained baseline is milder (its zero-ish output is a sensible v), so the MMD
/// gain is smaller: 6-7x over seeds 0-4, against 1-2x for models that did not learn.
#[test]
fn a_v_predicting_model_learns_moons() {
    let bars = Bars {
        max_ratio_to_floor: 20.0,
        min_mmd_gain: 3.5,
        min_blob_gain: 2.5,
    };
    check_with(DatasetKind::Moons, 40, bars, |c| {
        c.model.prediction = Prediction::V
    });
}

/// Whether the weighting is applied at all is checked exactly on a fixed batch (the loss
/// module's `min_snr_weighting_changes_the_loss_exactly_as_the_formula_says`): on this budget
/// its samples are within seed noise of plain epsilon's, so this test only shows it learns.
#[test]
fn min_snr_weighting_learns_moons() {
    let bars = Bars {
        max_ratio_to_floor: 25.0,
        min_mmd_gain: 5.0,
        min_blob_gain: 1.5,
    };
    check_with(DatasetKind::Moons, 40, bars, |c| {
        c.train.weighting = LossWeighting::MinSnr
    });
}

/// The NLL bound, bits/dim, of `model` on 500 held-out points: with its own learned variance
/// (`None`) or a fixed one.
fn bound(o: &Outcome, model: &Network, variance: Option<PosteriorVariance>) -> f64 {
    let device = Backend::default_cpu().device().unwrap();
    nll_bound(
        model,
        &o.schedule,
        &o.reference.points[..500],
        variance,
        0,
        &device,
    )
    .unwrap()
    .bits_per_dim
}

/// A learned variance must do what it is for: the trained model's bound with its own variance
/// beats the same model's bound with either fixed variance, and the untrained model's.
///
/// Measured over seeds 0-4 (`seed_spread`): learned 1.09-1.19 bits/dim, beta-tilde 2.18-2.33,
/// beta 1.19-1.28, so the learned variance beats the better fixed one (beta) by 0.088-0.097
/// (0.079 at the tests' seed, 42).
/// The bar, 0.04, is under half the smallest margin and about twelve times the margins' spread;
/// a variance that stayed at a fixed choice scores a margin of 0 or less.
#[test]
fn a_learned_variance_learns_moons_and_tightens_the_likelihood_bound() {
    let bars = Bars {
        max_ratio_to_floor: 15.0,
        min_mmd_gain: 10.0,
        min_blob_gain: 2.5,
    };
    let o = check_with(DatasetKind::Moons, 40, bars, |c| {
        c.model.variance = ModelVariance::LearnedRange
    });
    let learned = bound(&o, &o.model, None);
    let small = bound(&o, &o.model, Some(PosteriorVariance::FixedSmall));
    let large = bound(&o, &o.model, Some(PosteriorVariance::FixedLarge));
    let untrained = bound(&o, &o.untrained_model, None);
    eprintln!(
        "NLL bound, bits/dim: learned {learned:.3}, beta-tilde {small:.3}, beta {large:.3}; untrained {untrained:.3}"
    );
    assert!(
        learned < small.min(large) - 0.04,
        "learned {learned} vs beta-tilde {small}, beta {large}"
    );
    assert!(
        learned < untrained - 1.0,
        "trained {learned} vs untrained {untrained} bits/dim"
    );
}

#[test]
fn trained_eight_gaussians_beat_untrained_by_5x_and_approach_the_floor() {
    check(
        DatasetKind::EightGaussians,
        40,
        Bars {
            max_ratio_to_floor: 15.0,
            min_mmd_gain: 10.0,
            min_blob_gain: 7.0,
        },
    );
}

/// Conditional generation learns its classes: samples asked for each of the eight Gaussians
/// land in that Gaussian, where chance (and an untrained network) manage about 1 in 8.
///
/// Measured at seed 42 with this budget (4000 points, T = 200, 30 epochs): accuracy 0.999 at
/// w = 1 for the trained model, 0.114 for the untrained one. The bar, 0.8 overall and 0.5 for
/// every class, sits far above chance (0.125) and far below what training reaches, so seed noise
/// does not trip it and a model that ignores its class (0.125) cannot pass.
#[test]
fn conditional_samples_land_in_the_class_asked_for() {
    let device = Backend::default_cpu().device().unwrap();
    let mut config = ExperimentConfig::quick();
    config.data.dataset = DatasetKind::EightGaussians.into();
    config.model.num_classes = 8;
    config.train.epochs = 30;
    config.sampling.n_samples = 800;
    config.sampling.trajectory_frames = 0;
    let run = ddpm_core::pipeline::run(&config, &device, "flex", &mut Silent).unwrap();
    let classes = run
        .report
        .classes
        .as_ref()
        .expect("a conditional run reports classes");
    let untrained = classes.untrained.as_ref().unwrap();
    println!(
        "class accuracy: trained {:.3}, untrained {:.3}, classifier on real data {:.3}",
        classes.trained.accuracy, untrained.accuracy, classes.trained.accuracy_floor
    );
    assert!(classes.trained.accuracy > 0.8, "{:?}", classes.trained);
    assert!(untrained.accuracy < 0.3, "{untrained:?}");
    assert_eq!(classes.trained.per_class.len(), 8);
    for class in &classes.trained.per_class {
        assert_eq!(class.samples, 100);
        assert!(class.accuracy > 0.5, "{class:?}");
    }
}

/// Points with the mean and covariance of `points` and nothing else: N(0, I) mapped through
/// their mean and Cholesky factor. What a model that learned only the first two moments would
/// draw; every learning bar must fail it.
fn moment_matched_blob(points: &[[f32; 2]], seed: u64) -> Vec<[f32; 2]> {
    let n = points.len() as f64;
    let mean = [0, 1].map(|k| points.iter().map(|p| f64::from(p[k])).sum::<f64>() / n);
    let cov = |a: usize, b: usize| {
        points
            .iter()
            .map(|p| (f64::from(p[a]) - mean[a]) * (f64::from(p[b]) - mean[b]))
            .sum::<f64>()
            / n
    };
    let l11 = cov(0, 0).sqrt();
    let l21 = cov(1, 0) / l11;
    let l22 = (cov(1, 1) - l21 * l21).sqrt();
    let device = Backend::default_cpu().device().unwrap();
    let z = NoiseSource::new(seed).normal([points.len(), 2], &device);
    to_points(z)
        .unwrap()
        .iter()
        .map(|z| {
            let (z0, z1) = (f64::from(z[0]), f64::from(z[1]));
            [
                (mean[0] + l11 * z0) as f32,
                (mean[1] + l21 * z0 + l22 * z1) as f32,
            ]
        })
        .collect()
}

/// The learning tests' figures over seeds 0-4, to place their bounds where seed noise does not
/// reach and a real regression does. Slow (about 30 trainings): run it by hand,
/// `cargo test --release --test learning seed_spread -- --ignored --nocapture`.
#[test]
#[ignore]
fn seed_spread() {
    type Edit = fn(&mut ExperimentConfig);
    let cases: [(&str, DatasetKind, Edit); 11] = [
        ("moons eps", DatasetKind::Moons, |_| {}),
        ("moons x0", DatasetKind::Moons, |c| {
            c.model.prediction = Prediction::X0
        }),
        ("moons x0, 120 epochs", DatasetKind::Moons, |c| {
            c.model.prediction = Prediction::X0;
            c.train.epochs = 120
        }),
        ("moons v", DatasetKind::Moons, |c| {
            c.model.prediction = Prediction::V
        }),
        ("moons min-snr", DatasetKind::Moons, |c| {
            c.train.weighting = LossWeighting::MinSnr
        }),
        ("moons learned variance", DatasetKind::Moons, |c| {
            c.model.variance = ModelVariance::LearnedRange
        }),
        ("eight gaussians eps", DatasetKind::EightGaussians, |_| {}),
        // Regressions the bars must catch: a tenth of the training, and no time input.
        ("moons eps, 4 epochs", DatasetKind::Moons, |c| {
            c.train.epochs = 4
        }),
        ("moons eps, no time embedding", DatasetKind::Moons, |c| {
            c.model.mlp_mut().unwrap().time_embedding = TimeEmbeddingKind::None
        }),
        ("moons x0, 4 epochs", DatasetKind::Moons, |c| {
            c.model.prediction = Prediction::X0;
            c.train.epochs = 4
        }),
        (
            "eight gaussians eps, 4 epochs",
            DatasetKind::EightGaussians,
            |c| c.train.epochs = 4,
        ),
    ];
    // SEED_SPREAD_ONLY=text runs only the configs whose name contains it.
    let only = std::env::var("SEED_SPREAD_ONLY").unwrap_or_default();
    for (name, dataset, edit) in cases {
        if !name.contains(only.as_str()) {
            continue;
        }
        for seed in 0..5 {
            let o = learn(dataset, 40, |c| {
                c.seed = seed;
                edit(c)
            });
            let (t, u) = (o.trained.energy_distance, o.untrained.energy_distance);
            let mut line = format!(
                "{name} seed {seed}: ED {:.1}x floor, MMD {:.1}x floor, blob/trained MMD {:.2}, untrained/trained ED {:.0}, MMD {:.0}",
                t.ratio_to_floor(),
                o.trained.mmd_rbf.ratio_to_floor(),
                o.blob.mmd_rbf.value / o.trained.mmd_rbf.value,
                u.value / t.value,
                o.untrained.mmd_rbf.value / o.trained.mmd_rbf.value,
            );
            if o.model.learns_variance() {
                line += &format!(
                    "; bound learned {:.3}, beta-tilde {:.3}, beta {:.3}",
                    bound(&o, &o.model, None),
                    bound(&o, &o.model, Some(PosteriorVariance::FixedSmall)),
                    bound(&o, &o.model, Some(PosteriorVariance::FixedLarge)),
                );
            }
            println!("{line}");
        }
    }
}
