#!/usr/bin/env python3
"""Run the tutorial notebooks headless through the evcxr Rust kernel, as CI does.

Each notebook runs top to bottom in a fresh kernel; any cell error fails the run, and so does a
notebook that produced no inline chart (an `image/svg+xml` output). Executed copies are written to
`--out` (not to the committed files, which stay without outputs). Prints the wall time of each.

    python notebooks/execute.py                      # all notebooks, in order
    python notebooks/execute.py notebooks/02_*.ipynb # some of them
    python notebooks/execute.py --publish            # refresh the executed copies in docs/notebooks/
    python notebooks/execute.py --warm-up            # only compile the notebooks' dependencies

`--warm-up` runs just the one `:dep` cell that every notebook starts with, in a kernel of its own:
with `EVCXR_TMPDIR` set as for Jupyter, burn and ddpm-core are then compiled before a learner
opens the first notebook (about 8 minutes once on 2 cores), and each notebook starts in seconds.

`--publish` writes the executed notebooks, with their charts, to `docs/notebooks/`, where a reader
of the repository's web page sees them without installing anything. Run times and kernel
metadata are left out of the published copies, so they change only when an output does.

Needs: nbclient and nbformat (pip), and the `rust` kernel (`evcxr_jupyter --install`).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def mime_types(nb):
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            yield from output.get("data", {}).keys()


def strip_run_metadata(nb):
    """Drop what changes on every run but teaches nothing: cell timestamps, kernel versions."""
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
    nb.metadata.pop("language_info", None)


def run(path: Path, out_dir: Path, timeout: int, publish: bool) -> dict:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="rust",
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.monotonic()
    error = None
    try:
        client.execute()
    except CellExecutionError as e:
        error = str(e)
    seconds = time.monotonic() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    if publish:
        strip_run_metadata(nb)
    nbformat.write(nb, out_dir / path.name)
    kinds = set(mime_types(nb))
    if error is None and "image/svg+xml" not in kinds:
        error = f"no image/svg+xml output (saw {sorted(kinds)})"
    return {"notebook": path.name, "seconds": round(seconds, 1), "error": error}


def warm_up(timeout: int) -> int:
    first = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))[0]
    dep = next(c for c in nbformat.read(first, as_version=4).cells if c.cell_type == "code")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(dep.source)])
    print(f"compiling the notebooks' dependencies ({dep.source.strip()}) ...", flush=True)
    started = time.monotonic()
    NotebookClient(
        nb, kernel_name="rust", timeout=timeout, resources={"metadata": {"path": str(HERE)}}
    ).execute()
    print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=HERE.parent / "outputs" / "notebooks")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="write the executed copies to docs/notebooks/ (for reading online)",
    )
    parser.add_argument(
        "--warm-up",
        action="store_true",
        help="only compile the dependencies every notebook declares, then exit",
    )
    args = parser.parse_args()
    if args.warm_up:
        return warm_up(args.timeout)
    if args.publish:
        args.out = HERE.parent / "docs" / "notebooks"
    paths = args.notebooks or sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    results = []
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        result = run(path.resolve(), args.out, args.timeout, args.publish)
        status = "ok" if result["error"] is None else "FAILED"
        print(f"  {status} in {result['seconds']} s", flush=True)
        if result["error"]:
            print(result["error"], file=sys.stderr)
        results.append(result)
    if not args.publish:
        (args.out / "timings.json").write_text(json.dumps(results, indent=1) + "\n")
    failed = [r["notebook"] for r in results if r["error"]]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
