//! Every file in `configs/` loads, validates, and is what its name says.

use std::path::{Path, PathBuf};

use ddpm_core::prelude::*;

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn load(name: &str) -> ExperimentConfig {
    ExperimentConfig::load(&configs_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_config_file_loads_validates_and_explains_itself() {
    let mut names: Vec<String> = std::fs::read_dir(configs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 14, "{names:?}");
    let default = ExperimentConfig::default();
    for name in &names {
        let config = load(name);
        let text = std::fs::read_to_string(configs_dir().join(name)).unwrap();
        assert!(
            text.starts_with("# "),
            "{name} should open with a comment saying what it changes"
        );
        if name != "default.toml" {
            assert_ne!(config, default, "{name} changes nothing");
        }
    }
}

#[test]
fn default_quick_and_image_files_are_the_library_presets() {
    assert_eq!(load("default.toml"), ExperimentConfig::default());
    assert_eq!(load("quick.toml"), ExperimentConfig::quick());
    assert_eq!(load("digits.toml"), ExperimentConfig::digits());
    assert_eq!(load("digits_quick.toml"), ExperimentConfig::digits_quick());
    assert_eq!(
        load("fashion_mnist.toml"),
        ExperimentConfig::fashion_mnist()
    );
}

#[test]
fn the_mnist_and_cifar_files_name_their_data_directory() {
    for (name, dataset) in [
        ("mnist.toml", ImageDataset::Mnist),
        ("cifar10.toml", ImageDataset::Cifar10),
    ] {
        let text = std::fs::read_to_string(configs_dir().join(name)).unwrap();
        let config = ExperimentConfig::from_toml_str(&text).unwrap();
        assert_eq!(config.data.dataset, dataset);
        assert!(
            config.data.data_dir.is_some(),
            "{name} must say where its files are"
        );
        let mut expected = ExperimentConfig::for_dataset(dataset.into());
        expected.data.data_dir = config.data.data_dir.clone();
        assert_eq!(
            config, expected,
            "{name} is the library's preset for {dataset}"
        );
    }
}

#[test]
fn each_experiment_file_changes_what_its_name_says() {
    use ddpm_core::loss::LossWeighting;
    let d = ExperimentConfig::default();
    assert_eq!(
        load("dataset_swiss_roll.toml").data.dataset,
        DatasetKind::SwissRoll
    );
    assert!(load("betas_too_small.toml").diffusion.beta_end < d.diffusion.beta_end);
    assert!(load("budget_short.toml").train.epochs < d.train.epochs);
    assert_eq!(load("cosine.toml").diffusion.schedule, ScheduleKind::Cosine);
    assert_eq!(
        load("no_time_embedding.toml")
            .model
            .mlp()
            .unwrap()
            .time_embedding,
        TimeEmbeddingKind::None
    );
    assert!(load("few_steps.toml").diffusion.timesteps < d.diffusion.timesteps);
    assert!(load("many_steps.toml").diffusion.timesteps > d.diffusion.timesteps);
    let width = |c: ExperimentConfig| c.model.mlp().unwrap().hidden_size;
    assert!(width(load("small_network.toml")) < width(d.clone()));
    assert!(width(load("large_network.toml")) > width(d.clone()));
    assert_eq!(load("ddim.toml").sampling.method, SamplerKind::Ddim);
    assert_eq!(load("predict_x0.toml").model.prediction, Prediction::X0);
    assert_eq!(load("predict_v.toml").model.prediction, Prediction::V);
    assert_eq!(
        load("learned_variance.toml").model.variance,
        ModelVariance::LearnedRange
    );
    assert_eq!(load("min_snr.toml").train.weighting, LossWeighting::MinSnr);
    let conditional = load("conditional.toml");
    assert_eq!(conditional.model.num_classes, 8);
    assert!(conditional.sampling.guidance_scale > 1.0);
}
