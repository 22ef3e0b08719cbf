//! Tells the tests whether the optional Fashion-MNIST files are on this machine; with the `tch`
//! feature, points the programs at PyTorch's libraries.
//!
//! `cargo test --release` must pass on a fresh clone, where Debian's `dataset-fashion-mnist`
//! package is usually not installed. Without its files this script sets the cfg
//! `fashion_mnist_missing`, and the one test that reads them is reported as `ignored`, with the
//! reason and the install command, instead of failing. CI installs the package and sets
//! `DDPM_REQUIRE_DATA=1`: then the cfg is never set, and a missing install step fails the test.

use std::path::{Path, PathBuf};

/// Where `ddpm_core::data::images::load_fashion_mnist` looks when given no directory.
const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fashion_mnist_missing)");
    println!("cargo::rerun-if-env-changed=DDPM_FASHION_MNIST_DIR");
    println!("cargo::rerun-if-env-changed=DDPM_REQUIRE_DATA");
    let dir = std::env::var_os("DDPM_FASHION_MNIST_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from);
    // Watch the directory, or its nearest existing parent, so that installing the package later
    // re-runs this script (a path that does not exist would re-run it on every build).
    if let Some(watched) = dir.ancestors().find(|p| p.exists()) {
        println!("cargo::rerun-if-changed={}", watched.display());
    }
    let required = std::env::var_os("DDPM_REQUIRE_DATA").is_some_and(|v| !v.is_empty() && v != "0");
    if !required && !has_all_files(&dir) {
        println!("cargo::rustc-cfg=fashion_mnist_missing");
    }
    // Feature `tch`: torch-sys found libtorch (the PyTorch that pip installed) in this folder;
    // the command, tests, benches and examples look for it there at run time.
    if let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        println!(
            "cargo::rustc-link-arg=-Wl,-rpath,{}",
            Path::new(&lib).display()
        );
    }
}

/// Each IDX file is there, gzipped or not.
fn has_all_files(dir: &Path) -> bool {
    FILES
        .iter()
        .all(|name| dir.join(name).is_file() || dir.join(format!("{name}.gz")).is_file())
}
