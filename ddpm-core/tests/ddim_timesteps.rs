//! DDIM's timestep sub-sequences against HuggingFace diffusers' `DDIMScheduler.set_timesteps`,
//! for T in {200, 1000}, n = 1..=100 and every spacing: a reference nobody here wrote
//! (`tests/reference/diffusers_ddim_timesteps.py` made the table; its versions are in the file).

use ddpm_core::prelude::*;
use ddpm_core::sampling::timestep_subsequence;
use serde_json::Value;

#[test]
fn ddim_timesteps_match_diffusers_for_every_spacing() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/diffusers_ddim_timesteps.json"
    );
    let table: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = table["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 600);
    let mut extra_step = Vec::new();
    for case in cases {
        let big_t = case["T"].as_u64().unwrap() as usize;
        let n = case["n"].as_u64().unwrap() as usize;
        let spacing: TimestepSpacing = case["spacing"].as_str().unwrap().parse().unwrap();
        let theirs: Vec<i64> = case["timesteps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let ours: Vec<i64> = timestep_subsequence(big_t, n, spacing)
            .unwrap()
            .into_iter()
            .map(|t| t as i64)
            .collect();
        if theirs.len() == n + 1 {
            // numpy's float arange adds a step that rounds to -1, outside 0..T: we keep n.
            assert_eq!(theirs.last(), Some(&-1), "T = {big_t}, n = {n}, {spacing}");
            assert_eq!(ours, theirs[..n], "T = {big_t}, n = {n}, {spacing}");
            extra_step.push((big_t, n));
        } else {
            assert_eq!(ours, theirs, "T = {big_t}, n = {n}, {spacing}");
        }
    }
    // The known cases (T = 1000, n = 61 among them), all trailing.
    assert_eq!(
        extra_step,
        [
            (200, 29),
            (200, 31),
            (200, 58),
            (200, 62),
            (200, 97),
            (1000, 61)
        ]
    );
}
