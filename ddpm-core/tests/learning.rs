//! Proof that the DDPM learns: trained samples beat an untrained network's samples on energy
//! distance and MMD by a wide margin, and come within a stated factor of the floor.

use ddpm_core::prelude::*;

struct Outcome {
    trained: QualityReport,
    untrained: QualityReport,
    model: MlpDenoiser,
    untrained_model: MlpDenoiser,
    schedule: NoiseSchedule,
    reference: Dataset2d,
}

/// Train briefly on `dataset` (with `edit` applied to the config) and score trained and
/// untrained samples against a held-out draw.
fn learn(dataset: DatasetKind, epochs: usize, edit: impl FnOnce(&mut ExperimentConfig)) -> Outcome {
    let device = Backend::default_cpu().device().unwrap();
    let mut config = ExperimentConfig::default();
    config.data.dataset = dataset;
    config.data.n_points = 4000;
    config.diffusion.timesteps = 200;
    config.train.epochs = epochs;
    config.train.batch_size = 128;
    edit(&mut config);
    let seeds = config.seeds();
    let schedule = config.diffusion.init().unwrap();
    let data = config.data.init(seeds.data);
    let init = || {
        seeded(&device, seeds.init, || {
            config.model.init(schedule.timesteps(), &device)
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
    Outcome {
        trained: QualityReport::compute(&good.samples, &reference.points, &floor.points).unwrap(),
        untrained: QualityReport::compute(&bad.samples, &reference.points, &floor.points).unwrap(),
        model: trained.model,
        untrained_model: init(),
        schedule,
        reference,
    }
}

fn check(dataset: DatasetKind, epochs: usize, max_ratio_to_floor: f64) -> Outcome {
    check_with(dataset, epochs, max_ratio_to_floor, |_| {})
}

fn check_with(
    dataset: DatasetKind,
    epochs: usize,
    max_ratio_to_floor: f64,
    edit: impl FnOnce(&mut ExperimentConfig),
) -> Outcome {
    let o = learn(dataset, epochs, edit);
    let (t, u) = (o.trained.energy_distance, o.untrained.energy_distance);
    eprintln!(
        "{dataset}: energy distance trained {:.5} untrained {:.5} floor {:.5} ({:.1}x floor, {:.0}x better); \
         mmd trained {:.6} untrained {:.6} floor {:.6}",
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
        o.untrained.mmd_rbf.value > 5.0 * o.trained.mmd_rbf.value,
        "{dataset}: trained MMD {} is not 5x below untrained {}",
        o.trained.mmd_rbf.value,
        o.untrained.mmd_rbf.value
    );
    assert!(
        t.ratio_to_floor() < max_ratio_to_floor,
        "{dataset}: trained ED is {:.1}x its floor, allowed {max_ratio_to_floor}x",
        t.ratio_to_floor()
    );
    o
}

#[test]
fn trained_moons_beat_untrained_by_5x_and_approach_the_floor() {
    check(DatasetKind::Moons, 40, 4.0);
}

/// x_0 prediction is the weakest target on this budget (measured 8x floor where epsilon and v
/// reach 1.3x): near t = 0 the network itself must reproduce x_t to within the noise, while an
/// epsilon or v model gets x_t for free from the conversion and predicts a small correction.
#[test]
fn an_x0_predicting_model_learns_moons() {
    check_with(DatasetKind::Moons, 40, 12.0, |c| {
        c.model.prediction = Prediction::X0
    });
}

#[test]
fn a_v_predicting_model_learns_moons() {
    check_with(DatasetKind::Moons, 40, 4.0, |c| {
        c.model.prediction = Prediction::V
    });
}

#[test]
fn min_snr_weighting_learns_moons() {
    check_with(DatasetKind::Moons, 40, 4.0, |c| {
        c.train.weighting = LossWeighting::MinSnr
    });
}

#[test]
fn a_learned_variance_learns_moons_and_tightens_the_likelihood_bound() {
    let o = check_with(DatasetKind::Moons, 40, 4.0, |c| {
        c.model.variance = ModelVariance::LearnedRange
    });
    let device = Backend::default_cpu().device().unwrap();
    let points = &o.reference.points[..500];
    // Each model's own learned variance (None): the untrained one's is its initial guess.
    let bound =
        |model: &MlpDenoiser| nll_bound(model, &o.schedule, points, None, 0, &device).unwrap();
    let (trained, untrained) = (bound(&o.model), bound(&o.untrained_model));
    eprintln!(
        "NLL bound: trained {:.3} bits/dim (decoder {:.3}), untrained {:.3}",
        trained.bits_per_dim, trained.decoder, untrained.bits_per_dim
    );
    assert!(
        trained.bits_per_dim < untrained.bits_per_dim - 1.0,
        "trained {} vs untrained {} bits/dim",
        trained.bits_per_dim,
        untrained.bits_per_dim
    );
}

#[test]
fn trained_eight_gaussians_beat_untrained_by_5x_and_approach_the_floor() {
    check(DatasetKind::EightGaussians, 40, 4.0);
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
    config.data.dataset = DatasetKind::EightGaussians;
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
