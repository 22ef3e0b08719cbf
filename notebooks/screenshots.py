#!/usr/bin/env python3
"""Look at the executed notebooks the way a reader does: JupyterLab in headless Chromium.

Serves the repository with JupyterLab on 127.0.0.1, marks the executed notebooks trusted
(JupyterLab does not show the SVG outputs of an untrusted notebook at all), and takes one
screenshot per notebook at a laptop's window width. Open the PNGs and look: every chart should
fit the cell's width, with no horizontal scrollbar, and its text should stay readable.

    python notebooks/screenshots.py                          # docs/notebooks/*.ipynb, 1280 px wide
    python notebooks/screenshots.py --width 800 --single docs/notebooks/05_experiments.ipynb

Needs: JupyterLab (pip) and Chromium (`apt-get install chromium`). Writes to outputs/screenshots/.
"""
import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"JupyterLab did not answer at {url} within {seconds} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--width", type=int, default=1280, help="window width in pixels")
    parser.add_argument("--height", type=int, default=6000, help="window height in pixels")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "screenshots")
    parser.add_argument(
        "--single",
        action="store_true",
        help="JupyterLab's single-document mode (no file browser beside the notebook)",
    )
    args = parser.parse_args()
    paths = [p.resolve() for p in args.notebooks] or sorted(
        (ROOT / "docs" / "notebooks").glob("[0-9][0-9]_*.ipynb")
    )
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or shutil.which(
        "jupyter"
    )
    if not chromium or not jupyter:
        raise SystemExit("needs `chromium` and `jupyter` (JupyterLab) on PATH")
    for path in paths:
        subprocess.run([jupyter, "trust", str(path)], check=True, capture_output=True)
    args.out.mkdir(parents=True, exist_ok=True)

    port = free_port()
    server = subprocess.Popen(
        [jupyter, "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
         f"--ServerApp.root_dir={ROOT}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/lab", 60)
        for path in paths:
            rel = path.relative_to(ROOT).as_posix()
            mode = "single" if args.single else "lab"
            shot = args.out / f"{path.stem}-{args.width}px-{mode}.png"
            view = "doc" if args.single else "lab"
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars=false",
                 f"--window-size={args.width},{args.height}", "--virtual-time-budget=40000",
                 f"--screenshot={shot}", f"http://127.0.0.1:{port}/{view}/tree/{rel}"],
                check=True,
                capture_output=True,
                timeout=180,
            )
            print(shot)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
