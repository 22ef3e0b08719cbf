//! The "adding a network" guide (docs/adding-a-network.md), followed: a third denoiser defined
//! here, in a test, with nothing changed in the library. Deriving `Module` and implementing
//! `Denoise` is all it takes for training, both samplers, classifier-free guidance, the EMA,
//! the likelihood bound and saving to work on it, and it learns the moons like the MLP does.

use ddpm_core::burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use ddpm_core::burn::tensor::Int;
use ddpm_core::burn::tensor::activation::relu;
use ddpm_core::prelude::*;
use ddpm_core::sampling::TimestepSpacing;

/// The smallest useful denoiser: raw coordinates and sinusoidal features of the time index in,
/// two hidden ReLU layers, the noise out. Conditional when built with classes.
#[derive(Module, Debug)]
struct TinyDenoiser {
    input: Linear,
    hidden: Linear,
    output: Linear,
    classes: Option<Embedding>,
    #[module(skip)]
    num_classes: usize,
}

const TIME_FEATURES: usize = 16;
const WIDTH: usize = 64;

impl TinyDenoiser {
    fn new(num_classes: usize, device: &Device) -> Self {
        Self {
            input: LinearConfig::new(2 + TIME_FEATURES, WIDTH).init(device),
            hidden: LinearConfig::new(WIDTH, WIDTH).init(device),
            output: LinearConfig::new(WIDTH, 2).init(device),
            classes: (num_classes > 0)
                .then(|| EmbeddingConfig::new(num_classes + 1, WIDTH).init(device)),
            num_classes,
        }
    }
}

impl Denoise for TinyDenoiser {
    fn prediction(&self) -> Prediction {
        Prediction::Epsilon
    }

    fn learns_variance(&self) -> bool {
        false
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn data_size(&self) -> usize {
        2
    }

    fn denoise(
        &self,
        x_t: Tensor<2>,
        t_index: Tensor<1, Int>,
        class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        let [batch, _] = x_t.dims();
        let time = ddpm_core::model::sinusoidal_embedding(
            t_index.float().unsqueeze_dim(1),
            TIME_FEATURES,
            1.0,
        );
        let mut h = self.input.forward(Tensor::cat(vec![x_t, time], 1));
        if let Some(table) = &self.classes {
            let class = class.unwrap_or_else(|| {
                Tensor::<1, Int>::full([batch], self.num_classes as i64, &h.device())
            });
            h = h + table
                .forward(class.unsqueeze_dim::<2>(1))
                .reshape([batch, WIDTH]);
        }
        let h = relu(self.hidden.forward(relu(h)));
        DenoiserOutput::new(Prediction::Epsilon, self.output.forward(h))
    }
}

#[test]
fn a_network_defined_outside_the_library_trains_samples_and_learns() {
    let device = Backend::default_cpu().device().unwrap();
    let mut config = ExperimentConfig::quick();
    config.data.n_points = 2000;
    config.diffusion.timesteps = 100;
    config.train.epochs = 120;
    config.train.batch_size = 128;
    config.sampling.n_samples = 600;
    let seeds = config.seeds();
    let schedule = config.diffusion.init().unwrap();
    let data = config.data.init(seeds.data).unwrap();
    let fresh = || seeded(&device, seeds.init, || TinyDenoiser::new(0, &device));

    let trained = train(
        fresh(),
        &schedule,
        &data,
        &config.train,
        seeds.train,
        &device,
        &mut Silent,
    )
    .unwrap();
    let first = trained.history.per_epoch[0];
    let last = *trained.history.per_epoch.last().unwrap();
    assert!(last < 0.8 * first, "the loss falls: {first} -> {last}");

    // Both samplers, from the config's one entry point.
    let reference = Dataset2d::generate(DatasetKind::Moons, 600, seeds.eval);
    let floor = Dataset2d::generate(DatasetKind::Moons, 600, seeds.eval + 1);
    let score = |model: &TinyDenoiser, sampling: &SamplingConfig| {
        let out = sampling
            .init(&schedule)
            .unwrap()
            .sample(
                model,
                600,
                &mut NoiseSource::new(seeds.sample),
                &[],
                &device,
            )
            .unwrap();
        QualityReport::compute(&out.samples, &reference.points, &floor.points).unwrap()
    };
    let ddim = SamplingConfig {
        method: SamplerKind::Ddim,
        steps: 50,
        spacing: TimestepSpacing::Trailing,
        ..config.sampling.clone()
    };
    let untrained = score(&fresh(), &config.sampling);
    for sampling in [&config.sampling, &ddim] {
        let learned = score(&trained.model, sampling);
        eprintln!(
            "{}: trained {}, untrained {}",
            sampling.method,
            learned.summary(),
            untrained.summary()
        );
        // learning, by a margin, on the local and the global metric
        assert!(
            learned.nn1_accuracy.value < untrained.nn1_accuracy.value - 0.15,
            "1-NN {} vs untrained {}",
            learned.nn1_accuracy.value,
            untrained.nn1_accuracy.value
        );
        assert!(
            learned.energy_distance.value < untrained.energy_distance.value / 5.0,
            "ED {} vs untrained {}",
            learned.energy_distance.value,
            untrained.energy_distance.value
        );
    }

    // The likelihood bound sees it, and it is lower for the trained network.
    let bound = |model: &TinyDenoiser| {
        nll_bound(
            model,
            &schedule,
            &reference.points[..200],
            Some(PosteriorVariance::FixedSmall),
            seeds.sample,
            &device,
        )
        .unwrap()
        .bits_per_dim
    };
    assert!(bound(&trained.model) < bound(&fresh()) - 0.5);

    // Saved and loaded with the library's record functions: the same predictions.
    let path = std::env::temp_dir().join(format!("ddpm-tiny-{}.bpk", std::process::id()));
    save_model(&trained.model, &path).unwrap();
    let loaded = ddpm_core::train::load_weights(TinyDenoiser::new(0, &device), &path).unwrap();
    let _ = std::fs::remove_file(&path);
    let x = NoiseSource::new(1).normal([8, 2], &device);
    let a = trained.model.denoise_at(x.clone(), 40, None).value;
    let b = loaded.denoise_at(x, 40, None).value;
    let gap: f32 = (a - b).abs().max().into_scalar();
    assert_eq!(gap, 0.0);
}

#[test]
fn a_conditional_network_defined_outside_the_library_is_guided() {
    let device = Backend::default_cpu().device().unwrap();
    let model = seeded(&device, 3, || TinyDenoiser::new(2, &device));
    let schedule = ScheduleConfig {
        timesteps: 50,
        ..ScheduleConfig::default()
    }
    .init()
    .unwrap();
    let classes = [0usize, 1, 0, 1];
    let guided = Guided::new(&model, &classes, 3.0, &device).unwrap();
    let out = SamplingConfig::default()
        .init(&schedule)
        .unwrap()
        .sample(&guided, 4, &mut NoiseSource::new(2), &[], &device)
        .unwrap();
    assert_eq!(out.samples.len(), 4);
    // w = 3 extrapolates away from the unconditional prediction: the class reaches the output
    let x = NoiseSource::new(4).normal([4, 2], &device);
    let at = |w: f64| {
        Guided::new(&model, &classes, w, &device)
            .unwrap()
            .denoise_at(x.clone(), 10, None)
            .value
    };
    let gap: f32 = (at(3.0) - at(0.0)).abs().max().into_scalar();
    assert!(gap > 1e-4, "{gap}");
}
