#!/usr/bin/env python3
"""Run the tutorial notebooks headless through the evcxr Rust kernel, as CI does.

Each notebook runs top to bottom in a fresh kernel; any cell error fails the run, and so does a
notebook that produced no inline chart (an `image/svg+xml` output). Executed copies are written to
`--out` (not to the committed files, which stay without outputs). Prints the wall time of each.

    python notebooks/execute.py                      # all notebooks, in order
    python notebooks/execute.py notebooks/02_*.ipynb # some of them

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


def run(path: Path, out_dir: Path, timeout: int) -> dict:
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
    nbformat.write(nb, out_dir / path.name)
    kinds = set(mime_types(nb))
    if error is None and "image/svg+xml" not in kinds:
        error = f"no image/svg+xml output (saw {sorted(kinds)})"
    return {"notebook": path.name, "seconds": round(seconds, 1), "error": error}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=HERE.parent / "outputs" / "notebooks")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args()
    paths = args.notebooks or sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    results = []
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        result = run(path.resolve(), args.out, args.timeout)
        status = "ok" if result["error"] is None else "FAILED"
        print(f"  {status} in {result['seconds']} s", flush=True)
        if result["error"]:
            print(result["error"], file=sys.stderr)
        results.append(result)
    (args.out / "timings.json").write_text(json.dumps(results, indent=1) + "\n")
    failed = [r["notebook"] for r in results if r["error"]]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
