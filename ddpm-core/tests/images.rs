//! The real image datasets load as published. Fashion-MNIST comes from Debian's
//! `dataset-fashion-mnist` package, or from the directory in `DDPM_FASHION_MNIST_DIR`. It is
//! optional: without its files `build.rs` sets `fashion_mnist_missing` and the test below is
//! reported as ignored, naming what to install. `.ci/run` installs the package and sets
//! `DDPM_REQUIRE_DATA=1`, which makes the test mandatory there.

use ddpm_core::data::images::{Split, load_fashion_mnist};

#[test]
#[cfg_attr(
    fashion_mnist_missing,
    ignore = "optional data: no Fashion-MNIST files (apt-get install dataset-fashion-mnist, or set DDPM_FASHION_MNIST_DIR)"
)]
fn fashion_mnist_loads_with_its_published_shape_and_balance() {
    for (split, n) in [(Split::Train, 60_000), (Split::Test, 10_000)] {
        let set = load_fashion_mnist(None, split).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (set.len(), set.channels, set.height, set.width),
            (n, 1, 28, 28)
        );
        let mut counts = [0usize; 10];
        for &l in &set.labels {
            counts[l] += 1;
        }
        assert_eq!(counts, [n / 10; 10], "{split:?}");
        // The dataset's documented mean intensity, 0.2860 of full scale (72.9 of 255).
        let mean = set.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / set.pixels.len() as f64;
        assert!((mean - 72.9).abs() < 0.5, "{split:?}: mean pixel {mean}");
    }
}

mod digits {
    //! The U-Net learns the 8x8 digits, class by class: judged by a classifier trained on the
    //! real digits, against the same network untrained.

    use ddpm_core::Backend;
    use ddpm_core::loss::{Decoder, nll_bound_of};
    use ddpm_core::pipeline::images::run_images;
    use ddpm_core::prelude::*;

    #[test]
    fn generated_digits_beat_an_untrained_unet_and_are_of_the_class_asked_for() {
        let device = Backend::default_cpu().device().unwrap();
        // the notebooks' budget (20 epochs, 200 samples by DDIM in 25 steps), plus the bound
        let mut config = ExperimentConfig::digits_quick();
        config.evaluation.nll_images = 50;
        let cache =
            std::env::temp_dir().join(format!("ddpm-test-classifier-{}.bpk", std::process::id()));
        let run = run_images(&config, &device, "flex", &cache, &mut Silent).unwrap();
        let _ = std::fs::remove_file(&cache);
        let r = &run.report;
        let untrained_score = r
            .untrained
            .expect("a training run scores its untrained baseline");
        eprintln!(
            "FCD trained {:.2}, floor {:.2}, untrained {:.2}; accuracy trained {:?}, real {:?}, untrained {:?}; train {:.0} s",
            r.trained.fcd,
            r.floor.fcd,
            untrained_score.fcd,
            r.trained.class_accuracy,
            r.floor.class_accuracy,
            untrained_score.class_accuracy,
            r.train_seconds
        );
        // the classifier itself must know the digits, or its verdicts mean nothing
        assert!(r.floor.class_accuracy.unwrap() > 0.9);
        // a wide margin on the Fréchet distance, and within a few floors of real data
        assert!(r.trained.fcd < untrained_score.fcd / 5.0);
        assert!(r.trained.fcd < 6.0 * r.floor.fcd);
        // asked for a 3, it draws a 3, far above the 10 % of chance (and of the untrained net)
        assert!(r.trained.class_accuracy.unwrap() > 0.5);
        assert!(untrained_score.class_accuracy.unwrap() < 0.25);

        // The likelihood bound on held-out digits (discretised decoder) falls with training.
        let trained = r.nll.as_ref().unwrap().bits_per_dim;
        let untrained_model = config.init_model(config.seeds().init, &device).unwrap();
        let images = run.data.held_out.take(50);
        let all: Vec<usize> = (0..50).collect();
        let untrained = nll_bound_of(
            &untrained_model,
            &run.schedule,
            images.batch(&all, &device),
            Decoder::Discretized8Bit,
            Some(PosteriorVariance::FixedSmall),
            config.seeds().nll,
        )
        .unwrap()
        .bits_per_dim;
        eprintln!("NLL bound: trained {trained:.3}, untrained {untrained:.3} bits/dim");
        assert!(trained < untrained - 1.0, "{trained} vs {untrained}");
        assert!(
            trained > 0.0,
            "a bound on discrete data is positive: {trained}"
        );
    }
}
