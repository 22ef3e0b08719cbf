//! The real image datasets load as published. Fashion-MNIST comes from Debian's
//! `dataset-fashion-mnist` package (`.ci/run` installs it; see environment.md), or from the
//! directory in `DDPM_FASHION_MNIST_DIR`.

use ddpm_core::data::images::{Split, load_fashion_mnist};

#[test]
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
