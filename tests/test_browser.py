"""A real browser (Debian chromium, driven by Playwright) uses the app like a visitor would.

Skipped when /usr/bin/chromium (or $CHROMIUM) is absent: `apt-get install chromium` (CI does).
The README screenshot comes from the same `capture` function: `python scripts/screenshot_app.py` writes
docs/images/app.png with the bundled model (HF_DETECTOR_README_SCREENSHOT=1 makes this test copy its own
screenshot there instead, taken with the tiny test model).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)"),
]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def helpers() -> tuple[ModuleType, ModuleType]:
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    test_app = _load("_hf_detector_test_app", Path(__file__).with_name("test_app.py"))
    screenshot = _load("_hf_detector_screenshot_app", ROOT / "scripts" / "screenshot_app.py")
    return test_app, screenshot


@pytest.fixture(scope="module")
def app_url(helpers: tuple[ModuleType, ModuleType], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import torch

    test_app, _ = helpers
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    checkpoint = test_app.make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-browser-model"))
    server = test_app.launch_app(checkpoint)
    yield server.url
    server.demo.close()
    torch.set_num_threads(threads)


def test_upload_example_shows_label_heatmap_and_verdict(helpers: tuple[ModuleType, ModuleType], app_url: str,
                                                       tmp_path: Path) -> None:
    _, screenshot = helpers
    example = ROOT / "examples" / "fake_stylegan2_omi_104.jpg"
    shot = tmp_path / "app.png"
    result = screenshot.capture(app_url, example, shot)
    assert re.match(r"(Likely AI-generated|Likely a real photo|Uncertain: p\(fake\)) ", result.verdict), result.verdict
    assert "threshold" in result.verdict and "Face found" in result.verdict
    assert "fake" in result.label and "real" in result.label
    assert shot.is_file() and shot.stat().st_size > 20_000
    from PIL import Image

    with Image.open(shot) as image:
        assert image.width >= 1000 and image.height >= 800
    if os.environ.get("HF_DETECTOR_README_SCREENSHOT"):  # opt-in: refresh the README image from the test
        target = ROOT / "docs" / "images" / "app.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(shot.read_bytes())
