"""Drive the app in a real browser (Debian chromium + Playwright) and save a screenshot.

    python scripts/screenshot_app.py                          # bundled model -> docs/images/app.png
    python scripts/screenshot_app.py --model PATH_OR_REPO --out /tmp/app.png --image examples/x.jpg
    python scripts/screenshot_app.py --url http://127.0.0.1:7860/   # an app that is already running

`tests/test_browser.py` uses `capture` from here, so the README screenshot and the browser test walk
the same path: open the page, upload a photo, wait for the label and the Grad-CAM heatmap.
Playwright's own browser download is not needed: the system chromium is used (`CHROMIUM` env var or
/usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
DEFAULT_IMAGE = ROOT / "examples" / "fake_stylegan2_omi_104.jpg"
DEFAULT_OUT = ROOT / "docs" / "images" / "app.png"


@dataclass
class Capture:
    verdict: str  # the verdict sentence as shown
    label: str  # the gr.Label text (top class and confidences)
    screenshot: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def capture(url: str, image: str | os.PathLike, screenshot: str | os.PathLike, timeout_ms: int = 90_000,
            viewport: tuple[int, int] = (1280, 1000)) -> Capture:
    """Open `url`, upload `image` in the single-image tab, wait for the result, save a screenshot."""
    from playwright.sync_api import sync_playwright

    screenshot = Path(screenshot)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(timeout_ms)
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#input-image input[type=file]").set_input_files(str(image))
            # The upload event runs the classifier; wait until every output is there.
            page.locator("#verdict h3").wait_for(state="visible")
            page.locator("#heatmap img").wait_for(state="visible")
            page.locator("#label").get_by_text("fake").first.wait_for(state="visible")
            page.wait_for_function(
                "() => [...document.querySelectorAll('#heatmap img, #crop img')]"
                ".every(img => img.complete && img.naturalWidth > 0)"
            )
            verdict = page.locator("#verdict").inner_text().strip()
            label = page.locator("#label").inner_text().strip()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return Capture(verdict=verdict, label=label, screenshot=screenshot)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="screenshot an app that is already running at this URL")
    parser.add_argument("--model", default=None, help="Hub repo id or local checkpoint (default: $MODEL_ID "
                        "or the bundled model)")
    parser.add_argument("--revision", default=None)
    parser.add_argument("--image", default=str(DEFAULT_IMAGE))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)
    demo = None
    url = args.url
    if url is None:
        sys.path.insert(0, str(ROOT))
        import app

        demo = app.build_demo(app.load_detector(args.model, args.revision))
        port = free_port()
        demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs("127.0.0.1", port))
        url = f"http://127.0.0.1:{port}/"
    try:
        result = capture(url, args.image, args.out)
    finally:
        if demo is not None:
            demo.close()
    print(f"{result.verdict.splitlines()[0]}\nscreenshot: {result.screenshot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
