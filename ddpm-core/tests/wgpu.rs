//! The wgpu backend runs the same code as the CPU backends and gets the same numbers, within
//! float tolerance: forward passes of the MLP and the U-Net, one training step (loss, gradients,
//! clipping, Adam, EMA), DDPM and guided DDIM sampling, the likelihood bound; and a short
//! training run on wgpu learns (the checks in tests/parity, shared with LibTorch).
//!
//! `cargo test --release --features wgpu --test wgpu`. Without a GPU (as where `bash .ci/backends`
//! has run so far) they run on Mesa's software Vulkan driver (llvmpipe, `apt install
//! mesa-vulkan-drivers`), so budgets are small.
//! The same tests run on a real GPU through `ddpm-core/benches/gpu.sh`.
//!
//! Tolerances (tests/parity says why they are not zero): measured on llvmpipe, forward passes 1.1e-6 to
//! 1.6e-6 (bound 1e-4); the loss of one step 2.3e-7 (1e-4); outputs after one Adam step 8.6e-7 to
//! 1.5e-6 (1e-3); 100 DDPM steps 6.2e-7 and 20 guided DDIM steps 3.1e-7 (1e-3); the bound 1e-8
//! (1e-4). A bug (a wrong op, a missed broadcast, a lost parameter update) moves them to 1e-2 or
//! more.
#![cfg(feature = "wgpu")]

mod parity;

use ddpm_core::prelude::*;
use parity::flex;

fn wgpu() -> Device {
    Backend::Wgpu.device().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_mlp_forward_pass_matches_flex() {
    parity::mlp_forward_pass_matches_flex(&wgpu());
}

#[test]
fn one_training_step_of_the_mlp_matches_flex() {
    parity::mlp_training_step_matches_flex(&wgpu());
}

#[test]
fn the_unet_forward_pass_and_a_training_step_match_flex() {
    parity::unet_forward_pass_and_training_step_match_flex(&wgpu());
}

#[test]
fn ddpm_guided_ddim_and_the_bound_match_flex() {
    parity::samplers_and_bound_match_flex(&wgpu());
}

#[test]
fn the_unet_bound_in_bits_per_dim_matches_flex() {
    parity::unet_bound_matches_flex(&wgpu());
}

#[test]
fn a_short_training_run_on_wgpu_learns_the_moons() {
    parity::a_short_training_run_learns_the_moons(&wgpu());
}

/// The command, on wgpu: a tiny run with classes and DDIM writes its figures and metrics, and its
/// log names the adapter.
#[test]
fn the_command_runs_on_wgpu() {
    parity::the_command_runs_on("wgpu", "backend wgpu on ");
}

/// With no adapter at all (the Vulkan and EGL drivers hidden from the loaders), `--backend wgpu`
/// fails before training with an error that says what to install, and writes nothing.
#[test]
fn without_an_adapter_wgpu_fails_clearly_before_writing_anything() {
    let out = std::env::temp_dir().join(format!("ddpm-wgpu-none-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ddpm"))
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json")
        .args([
            "--backend",
            "wgpu",
            "--quiet",
            "--out-dir",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "ran without an adapter: {stderr}");
    assert!(stderr.contains("no graphics adapter"), "{stderr}");
    assert!(stderr.contains("mesa-vulkan-drivers"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "outputs written without an adapter");
}

#[test]
fn the_wgpu_device_is_recognised_and_its_adapter_named() {
    let device = wgpu();
    assert_eq!(Backend::of(&device), Some(Backend::Wgpu));
    assert_eq!(Backend::of(&flex()), Some(Backend::Flex));
    assert_eq!(Backend::label(&device), "wgpu");
    let adapter = Backend::Wgpu.hardware().unwrap();
    eprintln!("adapter: {adapter}");
    assert!(adapter.contains('('), "{adapter}");
    // llvmpipe (as in .ci/backends) is a software rasterizer, not a GPU: part 4 stays on flex
    assert_eq!(
        Backend::Wgpu.runs_on_gpu(),
        !adapter.contains("(Cpu,"),
        "{adapter}"
    );
    assert!(!Backend::Flex.runs_on_gpu());
}
