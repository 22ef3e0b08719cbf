//! The tutorial notebooks are well-formed: six of them, in order, each opening with its learning
//! objectives, then the one dependency line, with thin code cells saved without outputs.
//!
//! This checks their shape only; CI also executes them through the real evcxr kernel
//! (`notebooks/execute.py`), which is what proves they run against the library's public API.

use std::path::PathBuf;

use serde_json::Value;

const EXPECTED: [&str; 6] = [
    "01_introduction.ipynb",
    "02_forward_process.ipynb",
    "03_reverse_process.ipynb",
    "04_implementation.ipynb",
    "05_experiments.ipynb",
    "06_analysis.ipynb",
];

const DEP_LINE: &str =
    r#":dep ddpm-core = { path = "../ddpm-core", default-features = false, features = ["flex"] }"#;

/// The longest code cell allowed. Cells are meant to stay near 15 lines; the hand-written
/// training loop of part 4 is the one longer cell, because the loop itself is the lesson.
const MAX_CODE_LINES: usize = 30;

fn notebooks_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../notebooks")
}

fn source(cell: &Value) -> String {
    match &cell["source"] {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

fn load(name: &str) -> Value {
    let path = notebooks_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"))
}

#[test]
fn the_six_parts_exist_and_nothing_else_is_numbered() {
    let mut found: Vec<String> = std::fs::read_dir(notebooks_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ipynb"))
        .collect();
    found.sort();
    assert_eq!(found, EXPECTED);
}

#[test]
fn each_notebook_opens_with_objectives_then_the_dependency_line() {
    for (i, name) in EXPECTED.iter().enumerate() {
        let nb = load(name);
        assert_eq!(nb["nbformat"], 4, "{name}");
        assert_eq!(nb["metadata"]["kernelspec"]["name"], "rust", "{name}");
        let cells = nb["cells"].as_array().expect("cells");
        let first = &cells[0];
        assert_eq!(first["cell_type"], "markdown", "{name}: first cell");
        let intro = source(first);
        assert!(
            intro.starts_with(&format!("# Part {}", i + 1)),
            "{name}: title {intro:?}"
        );
        assert!(intro.contains("Learning objectives"), "{name}");
        let first_code = cells
            .iter()
            .find(|c| c["cell_type"] == "code")
            .expect("a code cell");
        assert_eq!(source(first_code).trim(), DEP_LINE, "{name}");
    }
}

#[test]
fn code_cells_are_saved_without_outputs_and_stay_thin() {
    for name in EXPECTED {
        let nb = load(name);
        for (i, cell) in nb["cells"].as_array().unwrap().iter().enumerate() {
            if cell["cell_type"] != "code" {
                continue;
            }
            assert_eq!(
                cell["outputs"],
                Value::Array(vec![]),
                "{name} cell {i} has outputs"
            );
            assert!(cell["execution_count"].is_null(), "{name} cell {i}");
            let lines = source(cell).lines().count();
            assert!(lines <= MAX_CODE_LINES, "{name} cell {i}: {lines} lines");
        }
    }
}

#[test]
fn the_published_executed_copies_are_current_and_show_their_charts() {
    // docs/notebooks/ holds each notebook executed (`notebooks/execute.py --publish`), for
    // reading on the repository's web page. A copy whose cells differ from the source is stale:
    // rerun the publish step after editing a notebook.
    let published = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/notebooks");
    for name in EXPECTED {
        let path = published.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run notebooks/execute.py --publish",
                path.display()
            )
        });
        let executed: Value = serde_json::from_str(&text).unwrap();
        let cells = |nb: &Value| -> Vec<(String, String)> {
            nb["cells"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["cell_type"].as_str().unwrap_or("").to_string(), source(c)))
                .collect()
        };
        assert!(
            cells(&executed) == cells(&load(name)),
            "docs/notebooks/{name} is stale: its cells differ from notebooks/{name}; \
             rerun `python notebooks/execute.py --publish`"
        );
        let code: Vec<&Value> = executed["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["cell_type"] == "code")
            .collect();
        assert!(
            code.iter().all(|c| c["execution_count"].is_number()),
            "{name}: a cell was not executed"
        );
        let outputs: Vec<&Value> = code
            .iter()
            .flat_map(|c| c["outputs"].as_array().unwrap())
            .collect();
        assert!(
            outputs.iter().all(|o| o["output_type"] != "error"),
            "{name}: published with an error"
        );
        assert!(
            outputs
                .iter()
                .any(|o| !o["data"]["image/svg+xml"].is_null()),
            "{name}: no chart in the published copy"
        );
        // Readers who have not trusted the notebook (downloaded or cloned), VS Code, static
        // renderers and GitHub see no SVG: every chart carries the PNG they show instead, and
        // the animation travels as HTML, which they all show.
        for o in &outputs {
            assert!(
                o["data"]["image/svg+xml"].is_null() || !o["data"]["image/png"].is_null(),
                "{name}: an SVG chart without a PNG beside it"
            );
            assert!(
                o["data"]["image/gif"].is_null(),
                "{name}: a bare image/gif, which static renderers show as words"
            );
        }
        // Rust highlighting, and JupyterLab does not mark the notebook changed on open.
        assert_eq!(
            executed["metadata"]["language_info"]["name"]
                .as_str()
                .map(str::to_lowercase)
                .as_deref(),
            Some("rust"),
            "{name}: published without language_info"
        );
    }
}
