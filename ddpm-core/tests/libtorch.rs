//! burn's LibTorch backend (feature `tch`, PyTorch's own CPU kernels) runs the same code as flex
//! and gets the same numbers, within float tolerance, and learns: the checks in tests/parity,
//! shared with wgpu. And the command runs on it.
//!
//! `cargo test --release --features tch --test libtorch`, with PyTorch 2.9.0 installed and
//! `LIBTORCH_USE_PYTORCH=1` (environment.md, "LibTorch"); `bash .ci/backends` runs it.
//!
//! Tolerances (tests/parity says why they are not zero). Measured here (2-core Xeon, torch 2.9.0),
//! each relative to the largest magnitude compared: MLP forward 6.9e-7; one MLP step, loss 1.2e-7
//! and outputs after it 4.6e-7; U-Net forward 3.9e-7, its loss equal, after one step 3.9e-7;
//! 100 DDPM steps 1.1e-6, guided DDIM 4.4e-7, the NLL bound 4.0e-9. The bounds (1e-4, 1e-3 after
//! a step or a chain) are the ones wgpu meets. The short run learns: MMD 0.049 against 0.575
//! untrained (11.8x better), with a sampling floor of 0.020.
#![cfg(feature = "tch")]

mod parity;

use ddpm_core::prelude::*;
use parity::flex;

fn libtorch() -> Device {
    Backend::Libtorch.device().unwrap()
}

#[test]
fn the_mlp_forward_pass_matches_flex() {
    parity::mlp_forward_pass_matches_flex(&libtorch());
}

#[test]
fn one_training_step_of_the_mlp_matches_flex() {
    parity::mlp_training_step_matches_flex(&libtorch());
}

#[test]
fn the_unet_forward_pass_and_a_training_step_match_flex() {
    parity::unet_forward_pass_and_training_step_match_flex(&libtorch());
}

#[test]
fn ddpm_guided_ddim_and_the_bound_match_flex() {
    parity::samplers_and_bound_match_flex(&libtorch());
}

#[test]
fn the_unet_bound_in_bits_per_dim_matches_flex() {
    parity::unet_bound_matches_flex(&libtorch());
}

#[test]
fn a_short_training_run_on_libtorch_learns_the_moons() {
    parity::a_short_training_run_learns_the_moons(&libtorch());
}

/// The command, on LibTorch: a tiny run with classes and DDIM names the backend and writes its
/// figures and metrics.
#[test]
fn the_command_runs_on_libtorch() {
    parity::the_command_runs_on("libtorch", "backend libtorch");
}

#[test]
fn the_libtorch_device_is_recognised() {
    let device = libtorch();
    assert_eq!(Backend::of(&device), Some(Backend::Libtorch));
    assert_eq!(Backend::of(&flex()), Some(Backend::Flex));
    assert_eq!(Backend::label(&device), "libtorch");
    assert_eq!(Backend::Libtorch.hardware().unwrap(), "CPU");
    assert!(!Backend::Libtorch.runs_on_gpu());
}
