//! Same config and seed give the same numbers; a different seed gives different ones.

use ddpm_core::prelude::*;

fn run(seed: u64, backend: Backend) -> (Vec<f32>, Vec<[f32; 2]>) {
    let device = backend.device().unwrap();
    let mut config = ExperimentConfig {
        seed,
        ..Default::default()
    };
    config.data.n_points = 512;
    config.diffusion.timesteps = 50;
    config.train.epochs = 3;
    let seeds = config.seeds();
    let schedule = config.diffusion.init().unwrap();
    let data = config.data.init(seeds.data).unwrap();
    let model = seeded(&device, seeds.init, || {
        config
            .model
            .init(DataShape::Points, schedule.timesteps(), &device)
            .unwrap()
    });
    let trained = train(
        model,
        &schedule,
        &data,
        &config.train,
        seeds.train,
        &device,
        &mut Silent,
    )
    .unwrap();
    let out = DdpmSampler::new(&schedule, config.sampling.variance)
        .sample(
            &trained.model,
            200,
            &mut NoiseSource::new(seeds.sample),
            &[],
            &device,
        )
        .unwrap();
    (trained.history.per_step, out.samples)
}

#[test]
fn same_config_and_seed_give_identical_losses_and_samples() {
    for backend in Backend::available()
        .into_iter()
        .filter(|b| *b != Backend::Wgpu)
    {
        let a = run(11, backend);
        let b = run(11, backend);
        assert_eq!(a.0, b.0, "{backend}: losses differ");
        assert_eq!(a.1, b.1, "{backend}: samples differ");
        let c = run(12, backend);
        assert_ne!(a.1, c.1, "{backend}: another seed gave the same samples");
    }
}
