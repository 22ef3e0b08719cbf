#!/usr/bin/env python3
"""Run the tutorial notebooks headless through the evcxr Rust kernel, as CI does.

Each notebook runs top to bottom in a fresh kernel; any cell error fails the run, and so does a
notebook whose outputs a reader could not see (see `reader_problems`): no inline chart at all, an
SVG chart without the PNG that untrusted and static views show instead, chart text below 9 px
in a 590 px cell (JupyterLab at a 1024 px window), or a bare `image/gif` that static renderers
show as words. Executed copies are written to `--out` (not to the committed files, which stay
without outputs). Prints the wall time of each.

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
import base64
import json
import re
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


# The narrowest notebook cell readers meet (JupyterLab 4, 1024 px window, file browser open) and
# the smallest chart text they should have to read there: ddpm_core::plot::layout's constants.
NARROW_CELL_PX = 590
MIN_SCREEN_TEXT_PX = 9.0

SVG_WIDTH = re.compile(r'<svg[^>]*?viewBox="0 0 ([0-9.]+) [0-9.]+"')
FONT_SIZE = re.compile(r'font-size="([0-9.]+)(?:px)?"')


def smallest_text_on_screen(svg: str, cell_px: int = NARROW_CELL_PX):
    """The smallest font size of an SVG chart times the scale a cell `cell_px` wide shows it at."""
    width = SVG_WIDTH.search(svg)
    sizes = [float(m) for m in FONT_SIZE.findall(svg)]
    if not width or not sizes:
        return None
    return min(sizes) * min(1.0, cell_px / float(width.group(1)))


def reader_problems(nb) -> list:
    """What a reader would miss in this executed notebook, one line per output."""
    problems = []
    kinds = set(mime_types(nb))
    if "image/svg+xml" not in kinds:
        problems.append(f"no inline chart (image/svg+xml) at all (saw {sorted(kinds)})")
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/svg+xml" in data:
                if "image/png" not in data:
                    problems.append(f"cell {i}: an SVG chart without a PNG beside it")
                svg = data["image/svg+xml"]
                svg = "".join(svg) if isinstance(svg, list) else svg
                px = smallest_text_on_screen(svg)
                if px is not None and px < MIN_SCREEN_TEXT_PX:
                    problems.append(
                        f"cell {i}: chart text {px:.1f} px in a {NARROW_CELL_PX} px cell "
                        f"(at least {MIN_SCREEN_TEXT_PX:.0f})"
                    )
            if "image/gif" in data:
                problems.append(f"cell {i}: a bare image/gif (static renderers show it as text)")
    return problems


def strip_run_metadata(nb):
    """Drop what changes on every run but teaches nothing: cell timestamps, kernel versions.

    `language_info` stays, less the kernel's version: it gives JupyterLab Rust highlighting, and without
    it JupyterLab marks the notebook changed on open and rewrites it on autosave.
    """
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
    info = {k: v for k, v in nb.metadata.get("language_info", {}).items() if k != "version"}
    nb.metadata["language_info"] = info or {"name": "rust", "pygment_lexer": "rust"}


def write_thumbnail(nb, path: Path) -> bool:
    """The PNG of the chart in the cell tagged `thumbnail`, for the README's table of parts."""
    for cell in nb.cells:
        if "thumbnail" in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                png = output.get("data", {}).get("image/png")
                if png:
                    path.write_bytes(base64.b64decode("".join(png) if isinstance(png, list) else png))
                    return True
    return False


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
        if error is None and not write_thumbnail(nb, out_dir / f"{path.stem}.png"):
            error = "no chart in a cell tagged `thumbnail` (the README shows it)"
    nbformat.write(nb, out_dir / path.name)
    problems = reader_problems(nb)
    if error is None and problems:
        error = "what a reader would miss:\n  " + "\n  ".join(problems)
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
