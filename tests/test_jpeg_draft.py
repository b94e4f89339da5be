"""Large JPEGs decoded at reduced size (Pillow's draft) when the resolution cap reduces them anyway."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hf_detector.data.images import DRAFT_MARGIN, FULL_SIZE_KEY, load_image
from hf_detector.preprocessing.core import LightProcessor

ROOT = Path(__file__).resolve().parent.parent


def _photo(size: tuple[int, int], orientation: int = 1) -> bytes:
    face = Image.open(sorted((ROOT / "examples").glob("*.jpg"))[0]).convert("RGB").resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    face.save(buffer, format="JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


def test_large_jpeg_is_decoded_small_and_knows_its_full_size() -> None:
    data = _photo((2400, 1800))
    image = load_image(data, reduce_to=256)
    assert image.info[FULL_SIZE_KEY] == (2400, 1800)
    assert min(image.size) >= DRAFT_MARGIN * 256 and image.size[0] < 2400
    assert load_image(data).size == (2400, 1800)  # no hint: full decoding, as before
    assert FULL_SIZE_KEY not in load_image(_photo((600, 450)), reduce_to=256).info  # small enough already


def test_quarter_turn_orientation_swaps_the_full_size() -> None:
    image = load_image(_photo((2400, 1800), orientation=6), reduce_to=256)
    assert image.info[FULL_SIZE_KEY] == (1800, 2400) and image.height > image.width


@pytest.mark.parametrize("orientation", [1, 6])
def test_cap_gives_the_full_decodes_size_and_nearly_its_pixels(orientation: int, monkeypatch) -> None:
    processor = LightProcessor(max_short_side=256)
    data = _photo((2400, 1800), orientation)
    drafted, factor = processor.cap_resolution(load_image(data, reduce_to=256))
    monkeypatch.setenv("HF_DETECTOR_JPEG_DRAFT", "0")
    full, full_factor = processor.cap_resolution(load_image(data, reduce_to=256))
    assert drafted.size == full.size and factor == pytest.approx(full_factor)
    difference = np.abs(np.asarray(drafted, dtype=np.float32) - np.asarray(full, dtype=np.float32))
    assert difference.mean() < 2.0  # of 255: the same picture, reduced along a slightly different path
