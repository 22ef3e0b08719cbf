#!/usr/bin/env python3
"""Look at the executed notebooks the way readers do: JupyterLab in headless Chromium.

For each notebook, each window width and each trust state it serves the repository with
JupyterLab on 127.0.0.1, opens the notebook with the file browser open (as JupyterLab starts),
dismisses the "Select Kernel" dialog a reader without the Rust kernel sees, and photographs the
notebook's full length by scrolling it and stitching the views. Untrusted is how a downloaded or
cloned notebook opens (JupyterLab then hides every SVG output); trusted is after `jupyter trust`.

    python notebooks/screenshots.py                                   # all six, 1024 and 1280 px, both trust states
    python notebooks/screenshots.py --width 1024 --trust untrusted docs/notebooks/05_experiments.ipynb
    python notebooks/screenshots.py --html                            # also static HTML (nbconvert), as nbviewer shows it

Writes `outputs/screenshots/<notebook>-<width>px-<trust>.png` (full length) and, with
`--segments`, the views it stitched (`...-NN.png`), which are easier to open one by one.
Open them and look: every chart shown, none cut off, its text readable.

Needs: JupyterLab, Playwright and Pillow (pip), and Chromium (`apt-get install chromium`);
Playwright drives the system Chromium, it downloads no browser.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SCROLLER = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


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


class Lab:
    """A JupyterLab server with its own data directory: its own trust database, and no kernels
    (the notebooks are only looked at, never run)."""

    def __init__(self, jupyter: str, data_dir: Path):
        self.port = free_port()
        env = dict(os.environ, JUPYTER_DATA_DIR=str(data_dir))
        self.server = subprocess.Popen(
            [jupyter, "lab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
             "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
             "--KernelSpecManager.allowed_kernelspecs=__none__",
             f"--ServerApp.root_dir={ROOT}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        wait_for(f"http://127.0.0.1:{self.port}/lab", 90)

    def url(self, path: Path) -> str:
        # `reset`: a fresh workspace, so the notebooks opened before are not reopened beside it.
        return f"http://127.0.0.1:{self.port}/lab/tree/{path.relative_to(ROOT).as_posix()}?reset"

    def close(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=30)


def dismiss_dialogs(page) -> None:
    """The "Select Kernel" dialog (once per notebook JupyterLab opens), and the toast asking
    whether to fetch Jupyter news."""
    for _ in range(5):
        buttons = [page.locator(".jp-Dialog button", has_text=label) for label in ("No Kernel", "Cancel", "Close")]
        button = next((b for b in buttons if b.count()), None)
        if button is None:
            break
        button.first.click()
        page.wait_for_timeout(500)
    news = page.locator(".jp-toast-button", has_text="No")
    if news.count():
        news.first.click()
        page.wait_for_timeout(300)


def photograph(page, url: str, shot: Path, keep_segments: bool) -> int:
    """Open `url`, scroll its notebook from top to bottom and stitch the views into `shot`."""
    page.goto(url)
    page.wait_for_selector(SCROLLER, timeout=60_000)
    page.wait_for_timeout(3000)
    dismiss_dialogs(page)
    page.wait_for_timeout(1500)
    scroller = page.locator(SCROLLER).first
    box = scroller.bounding_box()
    step = int(box["height"]) - 40
    views, top, previous = [], 0, -1
    while True:
        page.evaluate(f"document.querySelector('{SCROLLER}').scrollTop = {top}")
        page.wait_for_timeout(700)
        actual = page.evaluate(f"document.querySelector('{SCROLLER}').scrollTop")
        if actual == previous:
            break
        path = shot.with_name(f"{shot.stem}-{len(views):02d}.png")
        page.screenshot(path=str(path), clip=box)
        views.append((actual, path))
        previous = actual
        top = actual + step
    # Stitch: each view starts at its own scroll offset; later views overwrite the overlap.
    width = int(box["width"])
    height = views[-1][0] + int(box["height"])
    sheet = Image.new("RGB", (width, height), "white")
    for offset, path in views:
        with Image.open(path) as view:
            sheet.paste(view.convert("RGB"), (0, offset))
        if not keep_segments:
            path.unlink()
    sheet.save(shot, optimize=True)
    return len(views)


def static_html(jupyter: str, paths: list, out: Path, width: int, browser) -> None:
    """nbconvert's HTML, as nbviewer-like tools show a notebook, photographed whole."""
    html_dir = out / "html"
    html_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        subprocess.run([jupyter, "nbconvert", "--to", "html", "--output-dir", str(html_dir), str(path)],
                       check=True, capture_output=True)
        page = browser.new_page(viewport={"width": width, "height": 1000})
        page.goto((html_dir / f"{path.stem}.html").as_uri())
        page.wait_for_timeout(1500)
        shot = out / f"{path.stem}-{width}px-html.png"
        page.screenshot(path=str(shot), full_page=True)
        page.close()
        print(shot)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--width", type=int, action="append", help="window width (repeatable); default 1024 and 1280")
    parser.add_argument("--height", type=int, default=900, help="window height in pixels")
    parser.add_argument("--trust", choices=["trusted", "untrusted"], action="append",
                        help="trust state (repeatable); default both")
    parser.add_argument("--segments", action="store_true", help="keep the views that were stitched")
    parser.add_argument("--html", action="store_true", help="also photograph nbconvert's static HTML")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "screenshots")
    args = parser.parse_args()
    widths = args.width or [1024, 1280]
    trusts = args.trust or ["untrusted", "trusted"]
    paths = [p.resolve() for p in args.notebooks] or sorted(
        (ROOT / "docs" / "notebooks").glob("[0-9][0-9]_*.ipynb")
    )
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or shutil.which("jupyter")
    if not chromium or not jupyter:
        raise SystemExit("needs `chromium` and `jupyter` (JupyterLab) on PATH")
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        for trust in trusts:
            data_dir = Path(tmp) / trust
            data_dir.mkdir()
            if trust == "trusted":
                env = dict(os.environ, JUPYTER_DATA_DIR=str(data_dir))
                for path in paths:
                    subprocess.run([jupyter, "trust", str(path)], check=True, capture_output=True, env=env)
            lab = Lab(jupyter, data_dir)
            try:
                for width in widths:
                    page = browser.new_page(viewport={"width": width, "height": args.height})
                    for path in paths:
                        shot = args.out / f"{path.stem}-{width}px-{trust}.png"
                        n = photograph(page, lab.url(path), shot, args.segments)
                        print(f"{shot} ({n} views)", flush=True)
                    page.close()
            finally:
                lab.close()
        if args.html:
            for width in widths:
                static_html(jupyter, paths, args.out, width, browser)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
