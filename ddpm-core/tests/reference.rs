//! Schedules, the forward process and one reverse step of DDPM and DDIM against HuggingFace
//! diffusers: a reference nobody here wrote. `tests/reference/diffusers_schedules_and_steps.py`
//! made the table (its diffusers, torch and numpy versions are in the file) from fixed inputs that
//! the table also holds, so both sides compute from the very same numbers.
//!
//! diffusers computes in float32 (its alphas_cumprod is a float32 cumulative product), we in f64
//! coefficients applied to f32 tensors: the tolerance, 2e-4 relative to `1 + |reference|`, covers
//! that and nothing more. A wrong formula is off by percent or more; so is a schedule of the wrong
//! shape (a linear schedule differs from the quadratic one by 60 % of beta at mid-chain).

use ddpm_core::diffusion::q_sample;
use ddpm_core::prelude::*;
use serde_json::Value;

const TOL: f64 = 2e-4;

fn table() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/diffusers_schedules_and_steps.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A `[4, 2]` tensor from a flat list of eight values.
fn tensor(v: &Value, device: &Device) -> Tensor<2> {
    let flat = floats(v);
    let points: Vec<[f32; 2]> = flat.chunks(2).map(|p| [p[0] as f32, p[1] as f32]).collect();
    from_points(&points, device)
}

fn values(x: Tensor<2>) -> Vec<f64> {
    x.into_data()
        .try_to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Relative error against the reference, measured as `|ours - theirs| / (1 + |theirs|)`.
fn assert_close(ours: &[f64], theirs: &[f64], tol: f64, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let err = (a - b).abs() / (1.0 + b.abs());
        assert!(err <= tol, "{what}[{i}]: ours {a}, diffusers {b}");
    }
}

fn device() -> Device {
    Backend::default_cpu().device().unwrap()
}

fn schedule(kind: &str, timesteps: usize) -> NoiseSchedule {
    ScheduleConfig {
        timesteps,
        schedule: kind.parse().unwrap(),
        ..Default::default()
    }
    .init()
    .unwrap()
}

#[test]
fn every_schedule_matches_diffusers_at_t_1000_and_200() {
    let table = table();
    let cases = table["schedules"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        let kind = case["schedule"].as_str().unwrap();
        let big_t = case["T"].as_u64().unwrap() as usize;
        let s = schedule(kind, big_t);
        let ts: Vec<usize> = floats(&case["t"]).iter().map(|&t| t as usize).collect();
        let what = format!("{kind} T = {big_t}");
        let at = |v: &[f64]| ts.iter().map(|&t| v[t]).collect::<Vec<f64>>();
        // Relative to the value itself: alpha-bar spans nine decades along a cosine chain.
        let relative = |ours: Vec<f64>, theirs: Vec<f64>, slack: f64, name: &str| {
            for ((a, b), t) in ours.iter().zip(&theirs).zip(&ts) {
                assert!(
                    (a - b).abs() <= TOL * b.abs() + slack,
                    "{what} {name} at t = {t}: ours {a}, diffusers {b}"
                );
            }
        };
        relative(at(&s.betas), floats(&case["betas"]), 0.0, "beta");
        relative(
            at(&s.alpha_bar),
            floats(&case["alphas_cumprod"]),
            0.0,
            "alpha-bar",
        );
        // log SNR = ln(ab / (1 - ab)), the x axis of the schedule chart, from their alpha-bar.
        let log_snr = s.log_snr();
        assert_eq!(log_snr.len(), big_t, "{what}");
        for (&t, ab) in ts.iter().zip(floats(&case["alphas_cumprod"])) {
            let theirs = (ab / (1.0 - ab)).ln();
            assert!(
                (log_snr[t] - theirs).abs() < 1e-3 * (1.0 + theirs.abs()),
                "{what} log SNR at t = {t}: ours {}, from diffusers {theirs}",
                log_snr[t]
            );
        }
        // beta-tilde_0 is 0 (diffusers clamps it to 1e-20): compared from t = 1 on. diffusers
        // takes beta-tilde's beta as 1 - ab_t / ab_(t-1) in float32, which cancels near t = 0
        // to an absolute error of a few float32 ulps of 1: that is the slack, 2.4e-7.
        let theirs = floats(&case["posterior_variance"]);
        relative(
            at(&s.posterior_variance)[1..].to_vec(),
            theirs[1..].to_vec(),
            2.4e-7,
            "beta-tilde",
        );
        assert_eq!(s.posterior_variance[0], 0.0, "{what}");
    }
}

#[test]
fn forward_process_and_v_target_match_diffusers() {
    let table = table();
    let device = device();
    let s = schedule("linear", 1000);
    let x0 = tensor(&table["inputs"]["x0"], &device);
    let noise = tensor(&table["inputs"]["noise"], &device);
    for case in table["add_noise"].as_array().unwrap() {
        let t = case["t"].as_u64().unwrap() as usize;
        let ts = [t; 4];
        let x_t = q_sample(&s, x0.clone(), &ts, noise.clone());
        assert_close(
            &values(x_t),
            &floats(&case["x_t"]),
            TOL,
            &format!("x_t at {t}"),
        );
        let v = Prediction::V.target(&s, x0.clone(), noise.clone(), &ts);
        assert_close(&values(v), &floats(&case["v"]), TOL, &format!("v at {t}"));
    }
}

#[test]
fn one_ddpm_step_matches_diffusers_for_every_target_and_variance() {
    let table = table();
    let device = device();
    let s = schedule("linear", 1000);
    let inputs = &table["inputs"];
    let x_t = tensor(&inputs["x_t"], &device);
    let output = tensor(&inputs["output"], &device);
    let variance_output = tensor(&inputs["variance_output"], &device);
    let noise = tensor(&inputs["step_noise"], &device);
    let cases = table["ddpm_steps"].as_array().unwrap();
    assert_eq!(cases.len(), 45);
    for case in cases {
        let prediction: Prediction = case["prediction"].as_str().unwrap().parse().unwrap();
        let variance = case["variance"].as_str().unwrap();
        let t = case["t"].as_u64().unwrap() as usize;
        let what = format!("DDPM {prediction} {variance} t = {t}");
        let mut out = DenoiserOutput::new(prediction, output.clone());
        let fixed = match variance {
            "fixed_small" => PosteriorVariance::FixedSmall,
            "fixed_large" => PosteriorVariance::FixedLarge,
            "learned_range" => {
                out = out.with_variance(variance_output.clone());
                // Overridden by the learned variance; deliberately the "wrong" one.
                PosteriorVariance::FixedLarge
            }
            other => panic!("unknown variance type {other}"),
        };
        let step = DdpmSampler::new(&s, fixed).step_parts(out, t, x_t.clone(), noise.clone());
        assert_close(
            &values(step.x0_pred),
            &floats(&case["x0"]),
            TOL,
            &format!("{what} x0"),
        );
        assert_close(
            &values(step.x_prev),
            &floats(&case["x_prev"]),
            TOL,
            &format!("{what} x_prev"),
        );
    }
}

#[test]
fn one_ddim_step_matches_diffusers_for_every_target_and_eta() {
    let table = table();
    let device = device();
    let s = schedule("linear", 1000);
    let inputs = &table["inputs"];
    let x_t = tensor(&inputs["x_t"], &device);
    let output = tensor(&inputs["output"], &device);
    let noise = tensor(&inputs["step_noise"], &device);
    let cases = table["ddim_steps"].as_array().unwrap();
    assert_eq!(cases.len(), 36);
    for case in cases {
        let prediction: Prediction = case["prediction"].as_str().unwrap().parse().unwrap();
        let eta = case["eta"].as_f64().unwrap();
        let t = case["t"].as_u64().unwrap() as usize;
        let prev = case["prev"].as_u64().map(|p| p as usize);
        let what = format!("DDIM {prediction} eta {eta} t = {t}");
        let sampler = DdimSampler::new(&s, 50, TimestepSpacing::Leading, eta).unwrap();
        let x_prev = sampler.step(
            DenoiserOutput::new(prediction, output.clone()),
            t,
            prev,
            x_t.clone(),
            noise.clone(),
        );
        assert_close(
            &values(x_prev),
            &floats(&case["x_prev"]),
            TOL,
            &format!("{what} x_prev"),
        );
    }
}
