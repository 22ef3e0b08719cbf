//! The `ddpm` command end to end: every output file exists and decodes; bad input fails cleanly.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ddpm-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const TINY: &str = r#"
seed = 5
[data]
dataset = "circles"
n_points = 256
[diffusion]
timesteps = 40
[train]
epochs = 2
batch_size = 64
[sampling]
n_samples = 150
trajectory_frames = 6
"#;

fn png_size(path: &Path) -> (u32, u32) {
    png_inked(path, true)
}

/// [`png_size`] for a figure that may be all grey (image grids of grey digits).
fn png_size_grey(path: &Path) -> (u32, u32) {
    png_inked(path, false)
}

fn png_inked(path: &Path, needs_colour: bool) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    // Not blank: at least 1 % of the pixels carry ink, and some of it is colour (every figure
    // draws its data in colour; axes and text are grey). Where the marks land is checked on
    // known points in tests/figures.rs.
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf.chunks(channels).map(|px| &px[..3]).collect();
    let ink = pixels
        .iter()
        .filter(|px| px.iter().any(|&v| v < 200))
        .count();
    let colour = pixels
        .iter()
        .filter(|px| px.iter().max().unwrap() - px.iter().min().unwrap() > 60)
        .count();
    assert!(
        ink * 100 > pixels.len() && (colour > 50 || !needs_colour),
        "{} is nearly blank: {ink} inked and {colour} coloured pixels of {}",
        path.display(),
        pixels.len()
    );
    (info.width, info.height)
}

fn gif_frames(path: &Path) -> usize {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options
        .read_info(std::fs::File::open(path).unwrap())
        .unwrap();
    let mut frames = 0;
    while decoder.read_next_frame().unwrap().is_some() {
        frames += 1;
    }
    frames
}

#[test]
fn tiny_run_writes_every_output_and_each_decodes() {
    let dir = scratch("ok");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let out = dir.join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_ddpm"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--epochs",
            "3",
            "--quiet",
            "--out-dir",
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());

    for png in [
        "training_curve.png",
        "forward_process.png",
        "reverse_process.png",
        "noise_schedule.png",
        "real_vs_generated.png",
        "marginal_distributions.png",
    ] {
        let (w, h) = png_size(&out.join(png));
        assert!(w >= 400 && h >= 300, "{png}: {w}x{h}");
    }
    assert_eq!(gif_frames(&out.join("sampling_animation.gif")), 6 + 15);

    let samples = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    let mut lines = samples.lines();
    assert_eq!(lines.next(), Some("x,y"));
    let rows: Vec<Vec<f32>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 150);
    assert!(
        rows.iter()
            .all(|r| r.len() == 2 && r.iter().all(|v| v.is_finite()))
    );
    let data = std::fs::read_to_string(out.join("data.csv")).unwrap();
    assert_eq!(data.lines().next(), Some("x,y,label"));
    assert_eq!(data.lines().count(), 257);

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for key in ["energy_distance", "mmd_rbf"] {
        let value = metrics["trained"][key]["value"].as_f64().unwrap();
        let floor = metrics["trained"][key]["floor"].as_f64().unwrap();
        assert!(value.is_finite() && floor > 0.0, "{key}");
    }
    // The local-structure metrics are shares in [0, 1]; two real draws score about 0.5 on the
    // 1-NN accuracy, and the untrained model's noise is told apart from the data.
    for key in ["nn1_accuracy", "precision", "recall"] {
        for side in ["value", "floor"] {
            let v = metrics["trained"][key][side].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{key} {side}: {v}");
        }
    }
    let floor = metrics["trained"]["nn1_accuracy"]["floor"]
        .as_f64()
        .unwrap();
    assert!((0.35..0.65).contains(&floor), "1-NN floor {floor}");
    assert!(
        metrics["untrained"]["nn1_accuracy"]["value"]
            .as_f64()
            .unwrap()
            > 0.8
    );
    assert_eq!(metrics["history"]["per_epoch"].as_array().unwrap().len(), 3);

    // The resolved config has the flag's override and re-runs to the same samples.
    let resolved = out.join("config.json");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&resolved).unwrap()).unwrap();
    assert_eq!(config["train"]["epochs"], 3);
    assert_eq!(config["data"]["dataset"], "circles");
    let again = dir.join("again");
    let status = Command::new(env!("CARGO_BIN_EXE_ddpm"))
        .args([
            "--config",
            resolved.to_str().unwrap(),
            "--quiet",
            "--out-dir",
            again.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(again.join("samples.csv")).unwrap(),
        samples
    );

    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn fails_naming(args: &[&str], config: Option<&str>, needle: &str) {
    let dir = scratch(&needle.replace(['.', ' ', '`'], "_"));
    let out = dir.join("out");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ddpm"));
    command
        .args(args)
        .args(["--quiet", "--out-dir", out.to_str().unwrap()]);
    if let Some(text) = config {
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        command.args(["--config", path.to_str().unwrap()]);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected failure for {needle}");
    assert!(stderr.contains(needle), "stderr lacks `{needle}`: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "partial outputs left in {}", out.display());
}

/// Without the `wgpu` cargo feature, `--backend wgpu` says which feature is missing.
#[cfg(not(feature = "wgpu"))]
#[test]
fn wgpu_without_its_feature_names_the_feature() {
    fails_naming(&["--backend", "wgpu"], None, "`wgpu` cargo feature");
}

/// Without the `tch` cargo feature, `--backend libtorch` names that feature (not the backend's name).
#[cfg(not(feature = "tch"))]
#[test]
fn libtorch_without_its_feature_names_the_feature() {
    fails_naming(&["--backend", "libtorch"], None, "`tch` cargo feature");
}

#[test]
fn bad_input_exits_nonzero_naming_the_field_and_writes_nothing() {
    fails_naming(
        &[],
        Some("[diffusion]\nbeta_start = 0.5\nbeta_end = 0.02\n"),
        "diffusion.beta_start",
    );
    fails_naming(
        &[],
        Some("[train]\nlearning_rate = -1.0\n"),
        "train.learning_rate",
    );
    fails_naming(&[], Some("[train]\nbatch_size = 0\n"), "train.batch_size");
    fails_naming(&[], Some("[train]\nepoch = 3\n"), "unknown field `epoch`");
    fails_naming(&["--timesteps", "0"], None, "diffusion.timesteps");
    fails_naming(&["--dataset", "mnist"], None, "mnist");
}

#[test]
fn experiment_writes_a_chart_and_tables_with_one_row_per_variant() {
    let dir = scratch("experiment");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let out = dir.join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_ddpm"))
        .args(["experiment", "targets", "--seeds", "2", "--quiet"])
        .args(["--config", config.to_str().unwrap()])
        .args(["--out-dir", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let results = out.join("experiments").join("targets");
    let (w, h) = png_size(&results.join("comparison.png"));
    assert!(w >= 400 && h >= 300, "{w}x{h}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(json["name"], "targets");
    assert_eq!(json["base"]["data"]["dataset"], "circles");
    let variants = json["variants"].as_array().unwrap();
    let labels: Vec<&str> = variants
        .iter()
        .map(|v| v["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["epsilon", "x0", "v"]);
    for v in variants {
        let runs = v["runs"].as_array().unwrap();
        let seeds: Vec<u64> = runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
        assert_eq!(seeds, [5, 10_005]);
        for r in runs {
            assert!(r["energy_distance"].as_f64().unwrap().is_finite());
            assert!(r["energy_distance_floor"].as_f64().unwrap() > 0.0);
        }
    }

    let markdown = std::fs::read_to_string(results.join("results.md")).unwrap();
    assert!(markdown.starts_with("# Prediction target"), "{markdown}");
    assert!(markdown.contains("seeds 5, 10005"), "{markdown}");
    for label in labels {
        assert!(markdown.contains(&format!("| {label} | ")), "{markdown}");
    }
}

#[test]
fn ddim_flag_samples_in_fewer_steps_and_records_them() {
    let dir = scratch("ddim");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let out = dir.join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_ddpm"))
        .args(["--ddim", "10", "--prediction", "v", "--quiet"])
        .args(["--config", config.to_str().unwrap()])
        .args(["--out-dir", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let resolved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(resolved["sampling"]["method"], "ddim");
    assert_eq!(resolved["sampling"]["steps"], 10);
    assert_eq!(resolved["model"]["prediction"], "v");
    // Six frames asked for, all from the 11 states DDIM passes through (x_T and 10 steps).
    assert_eq!(gif_frames(&out.join("sampling_animation.gif")), 6 + 15);
}

#[test]
fn bad_experiment_input_exits_nonzero_and_writes_nothing() {
    fails_naming(&["experiment", "sizes"], None, "schedules");
    fails_naming(&["experiment", "ddim", "--seeds", "0"], None, "seeds");
    fails_naming(&["--ddim", "2000"], None, "sampling.steps");
}

fn ddpm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ddpm"))
        .args(args)
        .output()
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_knob_flag_reaches_its_config_field() {
    let dir = scratch("knobs");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let out = dir.join("out");
    #[rustfmt::skip]
    let flags = [
        "--batch-size", "32", "--lr", "0.002", "--beta-start", "0.0002", "--beta-end", "0.03",
        "--hidden-size", "48", "--depth", "2", "--activation", "silu", "--time-embedding", "learned",
        "--n-points", "300", "--samples", "120", "--variance", "fixed_large", "--ema-decay", "0.9",
        "--model-variance", "learned_range", "--seed", "9", "--schedule", "quadratic",
    ];
    let output = ddpm(
        &[
            &flags[..],
            &["--quiet", "--config", config.to_str().unwrap()],
            &["--out-dir", out.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let c = json(&out.join("config.json"));
    assert_eq!(c["train"]["batch_size"], 32);
    assert_eq!(c["train"]["learning_rate"], 0.002);
    assert_eq!(c["train"]["ema_decay"], 0.9);
    assert_eq!(
        c["train"]["epochs"], 2,
        "the file's value where no flag is given"
    );
    assert_eq!(c["diffusion"]["beta_start"], 0.0002);
    assert_eq!(c["diffusion"]["beta_end"], 0.03);
    assert_eq!(c["diffusion"]["schedule"], "quadratic");
    assert_eq!(c["model"]["network"]["hidden_size"], 48);
    assert_eq!(c["model"]["network"]["depth"], 2);
    assert_eq!(c["model"]["network"]["activation"], "silu");
    assert_eq!(c["model"]["network"]["time_embedding"], "learned");
    assert_eq!(c["model"]["variance"], "learned_range");
    assert_eq!(c["data"]["n_points"], 300);
    assert_eq!(c["sampling"]["n_samples"], 120);
    assert_eq!(c["sampling"]["variance"], "fixed_large");
    assert_eq!(c["seed"], 9);
    // The flags changed the run, not only the file: 120 samples were drawn.
    let samples = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert_eq!(samples.lines().count(), 121);
}

#[test]
fn bad_flag_values_name_their_field() {
    fails_naming(&["--lr", "0"], None, "train.learning_rate");
    fails_naming(&["--beta-end", "1.5"], None, "diffusion.beta_end");
    fails_naming(&["--hidden-size", "0"], None, "model.network.hidden_size");
    fails_naming(&["--samples", "0"], None, "sampling.n_samples");
    fails_naming(&["--eta", "0.5"], None, "--ddim");
    fails_naming(&["--ddim", "10", "--eta", "2"], None, "sampling.eta");
    fails_naming(&["--activation", "softplus"], None, "gelu");
}

#[test]
fn an_unusable_out_dir_fails_before_training() {
    let dir = scratch("outdir");
    let file = dir.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let started = std::time::Instant::now();
    // The default budget would train for minutes: failing at once shows nothing trained.
    let output = ddpm(&["--quiet", "--out-dir", file.join("out").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("output directory") && stderr.contains("a-file/out"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

/// Train the tiny config once into `dir/trained` and return the model's path.
fn trained_model(dir: &Path) -> PathBuf {
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let out = dir.join("trained");
    let output = ddpm(&[
        "--quiet",
        "--config",
        config.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    out.join("model.bpk")
}

#[test]
fn sample_reads_a_trained_model_and_its_config_without_training() {
    let dir = scratch("sample");
    let model = trained_model(&dir);
    let output = ddpm(&["sample", "--model", model.to_str().unwrap(), "--n", "90"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // By default the results go into a `sample/` folder beside the model.
    let out = model.parent().unwrap().join("sample");
    let samples = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert_eq!(samples.lines().count(), 91);
    for png in [
        "real_vs_generated.png",
        "marginal_distributions.png",
        "reverse_process.png",
    ] {
        png_size(&out.join(png));
    }
    assert_eq!(gif_frames(&out.join("sampling_animation.gif")), 6 + 15);
    assert!(
        !out.join("training_curve.png").exists(),
        "nothing was trained"
    );
    let metrics = json(&out.join("metrics.json"));
    assert!(
        metrics["trained"]["energy_distance"]["value"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    // The saved config, with the sampling override.
    let c = json(&out.join("config.json"));
    assert_eq!(
        (c["sampling"]["n_samples"].clone(), c["seed"].clone()),
        (90.into(), 5.into())
    );

    // DDIM flags apply to a saved model as to a training run.
    let ddim_out = dir.join("ddim");
    let output = ddpm(&[
        "sample",
        "--model",
        model.to_str().unwrap(),
        "--ddim",
        "8",
        "--out-dir",
        ddim_out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(output.status.success());
    let c = json(&ddim_out.join("config.json"));
    assert_eq!(c["sampling"]["method"], "ddim");
    assert_eq!(c["sampling"]["steps"], 8);
    // Same model, seed and sampler: exactly the points the training run drew.
    let trained = std::fs::read_to_string(model.with_file_name("samples.csv")).unwrap();
    let again = dir.join("again");
    let output = ddpm(&[
        "sample",
        "--model",
        model.to_str().unwrap(),
        "--out-dir",
        again.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    assert_eq!(
        std::fs::read_to_string(again.join("samples.csv")).unwrap(),
        trained,
        "sampling a saved model reproduces the training run's samples"
    );
}

#[test]
fn sample_rejects_a_missing_truncated_or_mismatched_model_clearly() {
    let dir = scratch("sample-bad");
    let model = trained_model(&dir);
    let run = |model: &Path, extra: &[&str]| -> String {
        let out = dir.join("bad-out");
        let output = ddpm(
            &[
                &["sample", "--quiet", "--model", model.to_str().unwrap()][..],
                &["--out-dir", out.to_str().unwrap()],
                extra,
            ]
            .concat(),
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "a failed sample wrote {}", out.display());
        stderr
    };

    // Missing: the file does not exist (its config does).
    let err = run(&model.with_file_name("nope.bpk"), &[]);
    assert!(
        err.contains("nope.bpk") && err.contains("no such file"),
        "{err}"
    );

    // Truncated: half of a real model file.
    let bytes = std::fs::read(&model).unwrap();
    let truncated = model.with_file_name("truncated.bpk");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = run(&truncated, &[]);
    assert!(
        err.contains("truncated.bpk") && err.contains("not a readable model record"),
        "{err}"
    );

    // Mismatched: weights of a 128-wide network read as a 64-wide one.
    let err = run(&model, &["--hidden-size", "64"]);
    assert!(
        err.contains("do not fit") && err.contains("hidden_size = 64"),
        "{err}"
    );

    // No config beside the model, and none given.
    let alone = dir.join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    std::fs::copy(&model, alone.join("model.bpk")).unwrap();
    let err = run(&alone.join("model.bpk"), &[]);
    assert!(
        err.contains("config.json") && err.contains("--config"),
        "{err}"
    );
}

#[test]
fn conditional_run_writes_class_figures_and_per_class_metrics() {
    let dir = scratch("conditional");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let out = dir.join("out");
    let output = ddpm(&[
        "--conditional",
        "--guidance",
        "2",
        "--quiet",
        "--config",
        config.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for png in ["conditional_samples.png", "guidance_sweep.png"] {
        let (w, h) = png_size(&out.join(png));
        assert!(w >= 600 && h >= 300, "{png}: {w}x{h}");
    }
    let c = json(&out.join("config.json"));
    assert_eq!(c["model"]["num_classes"], 2, "circles has two classes");
    assert_eq!(c["sampling"]["guidance_scale"], 2.0);
    let metrics = json(&out.join("metrics.json"));
    let classes = &metrics["classes"]["trained"];
    assert_eq!(classes["guidance_scale"], 2.0);
    assert!((0.0..=1.0).contains(&classes["accuracy"].as_f64().unwrap()));
    let per_class = classes["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 2);
    assert_eq!(per_class[0]["samples"], 75);
    assert!(metrics["classes"]["untrained"]["accuracy"].is_number());
    let sweep = json(&out.join("guidance_sweep.json"));
    let scales: Vec<f64> = sweep
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["guidance_scale"].as_f64().unwrap())
        .collect();
    assert_eq!(scales, [0.0, 1.0, 2.0, 4.0, 8.0]);
}

#[test]
fn bad_conditional_input_names_its_field() {
    fails_naming(&["--class", "1"], None, "sampling.class");
    fails_naming(&["--conditional", "--class", "2"], None, "sampling.class");
    fails_naming(
        &["--conditional", "--guidance", "-1"],
        None,
        "sampling.guidance_scale",
    );
    fails_naming(
        &["--conditional", "--label-dropout", "1.5"],
        None,
        "train.label_dropout",
    );
    fails_naming(&[], Some("[model]\nnum_classes = 3\n"), "model.num_classes");
}

#[test]
fn image_run_writes_image_figures_and_classifier_metrics() {
    let dir = scratch("digits");
    let out = dir.join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_ddpm"))
        .args([
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--timesteps",
            "50",
            "--channels",
            "8,16",
            "--samples",
            "40",
            "--ddim",
            "10",
            "--quiet",
            "--out-dir",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    for png in [
        "real_vs_generated.png",
        "forward_process.png",
        "reverse_process.png",
    ] {
        let (w, h) = png_size_grey(&out.join(png));
        assert!(w >= 300 && h >= 200, "{png}: {w}x{h}");
    }
    png_size(&out.join("training_curve.png"));
    // x_T, then log-SNR-spaced frames of the 10 DDIM steps, down to x_0
    let frames = gif_frames(&out.join("sampling_animation.gif"));
    assert!((3..=11).contains(&frames), "{frames} frames");
    let metrics = json(&out.join("metrics.json"));
    for key in ["trained", "floor", "untrained"] {
        let fcd = metrics[key]["fcd"].as_f64().unwrap();
        let accuracy = metrics[key]["class_accuracy"].as_f64().unwrap();
        assert!(
            fcd.is_finite() && fcd >= 0.0 && (0.0..=1.0).contains(&accuracy),
            "{key}"
        );
    }
    assert!(metrics["nll"]["bits_per_dim"].as_f64().unwrap() > 0.0);
    let config = json(&out.join("config.json"));
    assert_eq!(
        config["model"]["network"]["channels"],
        serde_json::json!([8, 16])
    );
    assert_eq!(config["sampling"]["steps"], 10);

    // The saved config reproduces the run: same numbers, through `--config` like a 2-D run.
    let again = dir.join("again");
    let output = ddpm(&[
        "--quiet",
        "--config",
        out.join("config.json").to_str().unwrap(),
        "--out-dir",
        again.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rerun = json(&again.join("metrics.json"));
    for key in ["trained", "floor", "untrained"] {
        assert_eq!(rerun[key], metrics[key], "{key}");
    }

    // `sample` on the image model: one class asked for, with guidance, by DDPM.
    let sampled = dir.join("sampled");
    let output = ddpm(&[
        "sample",
        "--model",
        out.join("model.bpk").to_str().unwrap(),
        "--class",
        "3",
        "--guidance",
        "2",
        "--samples",
        "20",
        "--quiet",
        "--out-dir",
        sampled.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let m = json(&sampled.join("metrics.json"));
    assert!((0.0..=1.0).contains(&m["trained"]["class_accuracy"].as_f64().unwrap()));
    assert!(
        m.get("untrained").is_none(),
        "sample has no untrained baseline"
    );
    let c = json(&sampled.join("config.json"));
    assert_eq!(c["sampling"]["class"], 3);
    assert_eq!(c["sampling"]["guidance_scale"], 2.0);
    let (w, h) = png_size_grey(&sampled.join("real_vs_generated.png"));
    assert!(w >= 200 && h >= 30, "one row, the class asked for: {w}x{h}");
    // the classifier is cached beside the outputs, and a second run reads it
    let cached: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("classifier-digits-")
        })
        .collect();
    assert_eq!(cached.len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_image_input_names_its_field_or_file() {
    fails_naming(&["--dataset", "mnist"], None, "data.data_dir");
    fails_naming(
        &["--dataset", "mnist", "--data-dir", "/nonexistent-ddpm-dir"],
        None,
        "train-images-idx3-ubyte",
    );
    fails_naming(
        &[
            "--dataset",
            "cifar10",
            "--data-dir",
            "/nonexistent-ddpm-dir",
        ],
        None,
        "cifar",
    );
    fails_naming(
        &["--dataset", "digits", "--hidden-size", "64"],
        None,
        "--hidden-size",
    );
    fails_naming(
        &["--dataset", "digits", "--channels", "12,16"],
        None,
        "model.network.channels",
    );
    fails_naming(
        &["--dataset", "digits", "--class", "10"],
        None,
        "sampling.class",
    );
    fails_naming(
        &["--dataset", "digits", "--eta", "1.5"],
        None,
        "sampling.eta",
    );
    fails_naming(
        &["experiment", "network", "--dataset", "digits"],
        None,
        "does not apply",
    );
    fails_naming(&["--dataset", "digits"], Some(TINY), "--dataset digits");
    fails_naming(
        &["--dataset", "digits", "--guidance", "nan"],
        None,
        "sampling.guidance_scale",
    );
    fails_naming(&["--channels", "8,16"], None, "--channels");
    fails_naming(&["--dataset", "pictures"], None, "fashion_mnist");
}

#[test]
fn the_guidance_grid_runs_on_the_digits() {
    let dir = scratch("digits-grid");
    let output = ddpm(&[
        "experiment",
        "guidance",
        "--dataset",
        "digits",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--timesteps",
        "50",
        "--channels",
        "8,16",
        "--samples",
        "40",
        "--ddim",
        "10",
        "--quiet",
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let grid = dir.join("experiments").join("guidance");
    let results = json(&grid.join("results.json"));
    let variants = results["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 6, "w = 0, 1, 2, 3, 5, 8");
    for v in variants {
        let run = &v["runs"][0];
        assert!(run["trained"]["fcd"].as_f64().unwrap().is_finite());
        assert!((0.0..=1.0).contains(&run["trained"]["class_accuracy"].as_f64().unwrap()));
    }
    // one model, sampled six ways
    assert_eq!(variants[0]["runs"][0]["shared_training"], false);
    assert_eq!(variants[5]["runs"][0]["shared_training"], true);
    let table = std::fs::read_to_string(grid.join("results.md")).unwrap();
    assert!(
        table.contains("class accuracy") && table.contains("w = 8"),
        "{table}"
    );
    let (w, h) = png_size_grey(&grid.join("comparison.png"));
    assert!(w >= 200 && h >= 200, "{w}x{h}");
    let _ = std::fs::remove_dir_all(&dir);
}
