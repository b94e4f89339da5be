"""Hostile and odd inputs (issue 7) through every entry point: `load_image`, `Detector.predict` /
`iter_files`, the CLI (`predict`, `evaluate`), the app's handlers and `pipeline("image-classification")`.

Every file is generated here (PIL, raw bytes, a PNG header written by hand): no binary fixtures. Each input
gets either a prediction or one line naming the file and the problem; a batch goes on past it.

What `pipeline()` does with a *path* (it decodes with transformers' own loader before our processor runs):
bad files raise PIL's exceptions, one line each (the first kind names the path) -- `PIL.UnidentifiedImageError`
(an `OSError`: empty, random bytes, text/HTML/SVG/PDF, a PNG with a bad header CRC), `OSError` (truncated
JPEG, corrupt PNG data), `PIL.Image.DecompressionBombError` (the 30000x30000 header, refused before
decoding), `ValueError` (a missing path or a directory: "Incorrect image source"; and a PNG whose zTXt
chunk inflates past Pillow's 1 MB text limit, which our loader decodes with the chunk dropped).
Valid files are scored; a 16-bit PNG and a palette PNG with a transparent colour decode differently there
(values clipped at 255 / the transparent colour kept as its palette colour), so pass `hf_detector.data.images.load_image(path)` to `pipeline()` for
exactly the CLI's and the app's pixels (tested below).
"""

from __future__ import annotations

import io
import json
import math
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from hf_detector.data.images import ImageLoadError, input_notes, load_image
from hf_detector.preprocessing.processor import FaceImageProcessor

ROOT = Path(__file__).resolve().parents[1]
OK = "ok"

# case -> (what happens: "ok" or a fragment of the one-line error, fragment of the loader's note or "")
EXPECTED: dict[str, tuple[str, str]] = {
    "empty.jpg": ("empty file", ""),
    "random_bytes.jpg": ("not an image file", ""),
    "notes.txt": ("not an image file", ""),
    "page.html": ("not an image file", ""),
    "drawing.svg": ("not an image file", ""),
    "document.pdf": ("not an image file", ""),
    "truncated.jpg": ("image file is truncated", ""),
    "bad_crc_ihdr.png": ("damaged png file", ""),
    "bad_crc_idat.png": (OK, ""),  # chunk data intact, only its CRC wrong: decoded, as browsers do
    "corrupt_idat.png": ("cannot decode image", ""),
    "one_by_one.png": (OK, ""),
    "strip_1x4000.png": (OK, ""),
    "bomb_30000x30000.png": ("refused before decoding", ""),
    "large_6000x4000.jpg": (OK, ""),
    "grey_16bit.png": (OK, ""),
    "cmyk.jpg": (OK, ""),
    "palette_transparent.png": (OK, ""),
    "rgba.png": (OK, ""),
    "la.png": (OK, ""),
    "animated.gif": (OK, "animated GIF with 3 frames: only the first frame was used"),
    "animated.webp": (OK, "animated WEBP with 3 frames: only the first frame was used"),
    "exif_rotated.jpg": (OK, ""),
    "exif_60kb_string.jpg": (OK, ""),
    "png_3mb_text.png": (OK, ""),
    "png_ztxt_bomb.png": (OK, "oversized PNG text metadata was ignored"),
    "photo.tiff": (OK, ""),
    "photo.bmp": (OK, ""),
    "name with spaces ünïcødé 顔.png": (OK, ""),
    "folder_named.jpg": ("is a directory", ""),
    "missing.jpg": ("no such file", ""),
}
BAD = [name for name, (expect, _) in EXPECTED.items() if expect != OK]
GOOD = [name for name, (expect, _) in EXPECTED.items() if expect == OK]


# ------------------------------------------------------------------------------------------ generators


def photo(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A smooth RGB image with a little noise (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / max(width, 1), y / max(height, 1), (x + y) / max(width + height, 1)], -1)
    pixels = np.clip(base * 200 + rng.normal(0, 8, base.shape) + 20, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def encoded(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc & 0xFFFFFFFF)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        out.append((data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]))
        offset += 12 + length
    return out


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A header declaring width x height 8-bit grey, then one tiny IDAT: no 900 MB is ever allocated."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + png_chunk(b"IEND", b""))


def png_rewritten(image: Image.Image, bad_crc: bytes | None = None, corrupt_idat: bool = False,
                  extra_after_ihdr: bytes = b"") -> bytes:
    """The PNG of `image`, with a wrong CRC on chunk `bad_crc`, damaged IDAT data, or an extra chunk."""
    out = b"\x89PNG\r\n\x1a\n"
    for kind, data in png_chunks(encoded(image, "PNG")):
        if kind == b"IDAT" and corrupt_idat:
            middle = len(data) // 2
            data = data[:middle] + bytes(b ^ 0x5A for b in data[middle:middle + 16]) + data[middle + 16:]
        crc = (zlib.crc32(kind + data) ^ 0xDEADBEEF) if kind == bad_crc else None
        out += png_chunk(kind, data, crc)
        if kind == b"IHDR":
            out += extra_after_ihdr
    return out


def jpeg_with_exif(image: Image.Image, **tags: object) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[{"orientation": 0x0112, "description": 0x010E}[tag]] = value
    return encoded(image, "JPEG", quality=95, exif=exif.tobytes())


def animated(image: Image.Image, fmt: str, frames: int = 3) -> bytes:
    sequence = [image] + [image.rotate(20 * (i + 1)) for i in range(frames - 1)]
    return encoded(sequence[0], fmt, save_all=True, append_images=sequence[1:], duration=100, loop=0)


MINIMAL_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>"
               b"endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
       b'<circle cx="32" cy="32" r="20" fill="red"/></svg>\n')
HTML = b"<!DOCTYPE html><html><head><title>face</title></head><body><img src='face.jpg'></body></html>\n"


def write_hostile_files(root: Path) -> dict[str, Path]:
    """Every case of EXPECTED, written under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    face = photo(64, 48)
    text = PngImagePlugin.PngInfo()
    text.add_text("parameters", "a portrait, " * (3 * 1024 * 1024 // 12))  # 3 MB of tEXt
    ztxt_bomb = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * (32 << 20), 9))  # 32 MB inflated
    jpeg = encoded(photo(96, 96, seed=1), "JPEG", quality=90)
    grey16 = (np.asarray(face.convert("L"), np.uint16) * 257).astype(np.uint16)
    palette = face.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    data = {
        "empty.jpg": b"",
        "random_bytes.jpg": np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "notes.txt": b"just some text, not a picture\n",
        "page.html": HTML,
        "drawing.svg": SVG,
        "document.pdf": MINIMAL_PDF,
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "bad_crc_ihdr.png": png_rewritten(face, bad_crc=b"IHDR"),
        "bad_crc_idat.png": png_rewritten(face, bad_crc=b"IDAT"),
        "corrupt_idat.png": png_rewritten(face, corrupt_idat=True),
        "one_by_one.png": encoded(Image.new("RGB", (1, 1), (200, 120, 90)), "PNG"),
        "strip_1x4000.png": encoded(photo(1, 4000), "PNG"),
        "bomb_30000x30000.png": bomb_png(),
        "large_6000x4000.jpg": encoded(photo(60, 40).resize((6000, 4000), Image.Resampling.BILINEAR), "JPEG",
                                       quality=85),
        "grey_16bit.png": encoded(Image.fromarray(grey16), "PNG"),
        "cmyk.jpg": encoded(face.convert("CMYK"), "JPEG", quality=90),
        "palette_transparent.png": encoded(palette, "PNG", transparency=0),
        "rgba.png": encoded(face.convert("RGBA"), "PNG"),
        "la.png": encoded(face.convert("LA"), "PNG"),
        "animated.gif": animated(face, "GIF"),
        "animated.webp": animated(face, "WEBP"),
        "exif_rotated.jpg": jpeg_with_exif(photo(64, 32, seed=2), orientation=6),  # stored 64x32, shown 32x64
        "exif_60kb_string.jpg": jpeg_with_exif(face, description="x" * 60_000),
        "png_3mb_text.png": encoded(face, "PNG", pnginfo=text),
        "png_ztxt_bomb.png": png_rewritten(face, extra_after_ihdr=ztxt_bomb),
        "photo.tiff": encoded(face, "TIFF"),
        "photo.bmp": encoded(face, "BMP"),
        "name with spaces ünïcødé 顔.png": encoded(face, "PNG"),
    }
    paths = {}
    for name, payload in data.items():
        (root / name).write_bytes(payload)
        paths[name] = root / name
    (root / "folder_named.jpg").mkdir(exist_ok=True)
    paths["folder_named.jpg"] = root / "folder_named.jpg"
    paths["missing.jpg"] = root / "missing.jpg"
    assert set(paths) == set(EXPECTED)
    return paths


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_hostile_files(tmp_path_factory.mktemp("hostile"))


def assert_one_line_error(message: str, path: Path, expect: str) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    assert str(path) in message, message  # names the file
    assert expect in message.lower(), (expect, message)


# ------------------------------------------------------------------------------------------ load_image


@pytest.mark.parametrize("name", list(EXPECTED))
def test_load_image_gives_rgb_or_one_line_error(hostile: dict[str, Path], name: str) -> None:
    path, (expect, note) = hostile[name], EXPECTED[name]
    if expect != OK:
        with pytest.raises(ImageLoadError) as caught:
            load_image(path)
        assert_one_line_error(str(caught.value), path, expect)
        if path.is_file():  # the same bytes without a name: same verdict, labelled "image bytes"
            with pytest.raises(ImageLoadError, match=r"^image bytes: "):
                load_image(path.read_bytes())
        return
    image = load_image(path)
    assert image.mode == "RGB" and image.width >= 1 and image.height >= 1
    assert input_notes(image) == ([note] if note else [])
    if name != "large_6000x4000.jpg":  # bytes in, same image out
        assert load_image(path.read_bytes()).size == image.size
    expected_size = {"one_by_one.png": (1, 1), "strip_1x4000.png": (1, 4000), "exif_rotated.jpg": (32, 64),
                     "large_6000x4000.jpg": (6000, 4000)}.get(name, (64, 48))
    assert image.size == expected_size
    pixels = np.asarray(image)
    if name == "grey_16bit.png":  # scaled to 8 bits, not clipped to white
        assert pixels.min() < 200 and np.ptp(pixels) > 50
    if name == "palette_transparent.png":  # the transparent colour is composited on white
        index = np.asarray(Image.open(path))
        assert (pixels[index == 0] == 255).all() and (index == 0).any()
    if name == "exif_rotated.jpg":  # orientation 6: the stored left column is shown as the top row
        stored = np.asarray(photo(64, 32, seed=2), np.float32)
        assert np.abs(pixels[0].astype(np.float32) - stored[::-1, 0]).mean() < 12


def test_caller_images_are_not_modified(hostile: dict[str, Path]) -> None:
    with Image.open(hostile["animated.gif"]) as gif:
        rgb = load_image(gif)
        assert input_notes(rgb) == [EXPECTED["animated.gif"][1]] and not input_notes(gif)
        assert load_image(rgb) is rgb and input_notes(load_image(rgb)) == input_notes(rgb)  # reported once
    rotated = Image.open(hostile["exif_rotated.jpg"])
    assert load_image(rotated).size == (32, 64) and rotated.size == (64, 32)


def test_large_photo_memory_is_bounded(hostile: dict[str, Path]) -> None:
    """6000x4000 JPEG (72 MB of pixels): the peak resident size grows by < 1.6x the pixels, no full copy."""
    code = ("import importlib.util, resource, sys\n"
            "spec = importlib.util.spec_from_file_location('images', sys.argv[1])\n"
            "images = importlib.util.module_from_spec(spec); spec.loader.exec_module(images)\n"
            "from PIL import Image; Image.new('RGB', (8, 8)).convert('L')\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "rgb = images.load_image(sys.argv[2])\n"
            "print(rgb.size, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)\n")
    done = subprocess.run([sys.executable, "-c", code, str(ROOT / "hf_detector" / "data" / "images.py"),
                           str(hostile["large_6000x4000.jpg"])], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    size, grown = done.stdout.rsplit(" ", 1)
    pixels = 6000 * 4000 * 3
    assert size == "(6000, 4000)" and int(grown) < 1.6 * pixels, done.stdout


def test_metadata_reader_is_bounded(hostile: dict[str, Path]) -> None:
    from hf_detector.signals.metadata import MAX_VALUE_CHARS, read_metadata

    for name in ("png_3mb_text.png", "png_ztxt_bomb.png", "exif_60kb_string.jpg", "random_bytes.jpg",
                 "bomb_30000x30000.png"):
        report = read_metadata(hostile[name])
        assert all(len(signal.value) <= MAX_VALUE_CHARS + 200 for signal in report.signals), name
    assert read_metadata(hostile["png_3mb_text.png"]).suggests("generator")


# ------------------------------------------------------------------------------------ processor / property


@pytest.mark.parametrize("size", [(1, 1), (1, 4000), (4000, 1), (11, 11), (19, 20), (20, 20), (640, 7)])
def test_face_crop_processor_on_odd_sizes(size: tuple[int, int], one_thread: None) -> None:
    processor = FaceImageProcessor(do_face_crop=True, crop_size=48, size=32)
    image = photo(*size)
    crop = processor.crop(image)
    assert crop.image.size == (48, 48) and crop.method in {"aligned", "box", "center"}
    pixels = processor(images=[image, image.convert("LA")])["pixel_values"]
    assert tuple(pixels.shape) == (2, 3, 32, 32) and torch.isfinite(pixels).all()


MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "P": 1, "I;16": 2, "CMYK": 4, "1": None}


def any_image(width: int, height: int, mode: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "1":
        size = (width + 7) // 8 * height
    else:
        size = MODES[mode] * width * height
    image = Image.frombytes(mode, (width, height), rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    if mode == "P":
        image.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        image.info["transparency"] = int(rng.integers(0, 256))
    return image


@settings(max_examples=30, deadline=None)
@given(width=st.integers(1, 600), height=st.integers(1, 600), mode=st.sampled_from(sorted(MODES)),
       seed=st.integers(0, 2**16), as_png=st.booleans())
def test_any_size_and_mode_gives_a_finite_tensor(width: int, height: int, mode: str, seed: int,
                                                  as_png: bool) -> None:
    image = any_image(width, height, mode, seed)
    source: Image.Image | bytes = encoded(image, "PNG") if as_png and mode != "CMYK" else image
    rgb = load_image(source)
    assert rgb.mode == "RGB" and rgb.size == (width, height)
    processor = FaceImageProcessor(do_face_crop=False, crop_size=40, size=24)
    pixels = processor(images=source)["pixel_values"]
    assert pixels.dtype == torch.float32 and tuple(pixels.shape) == (1, 3, 24, 24)
    assert torch.isfinite(pixels).all()
    assert tuple(processor.finish([rgb]).shape) == (1, 3, 24, 24)


# --------------------------------------------------------------------------------- Detector, CLI, app


@pytest.fixture(scope="module")
def detector(trained_tiny_model: Path, one_thread: None):
    from hf_detector.inference.detector import Detector

    return Detector.from_pretrained(trained_tiny_model, backend="pytorch")


def test_detector_batch_goes_past_every_bad_file(detector, hostile: dict[str, Path]) -> None:
    names = list(EXPECTED)
    results = list(detector.iter_files([hostile[n] for n in names], batch_size=7))
    assert [r.path for r in results] == [str(hostile[n]) for n in names]  # one result per input, in order
    for name, result in zip(names, results, strict=True):
        expect, note = EXPECTED[name]
        if expect == OK:
            assert result.error is None and result.prediction is not None, (name, result.error)
            assert math.isfinite(result.prediction.p_fake) and 0.0 <= result.prediction.p_fake <= 1.0
            assert result.prediction.notes == ([note] if note else []), name
            assert result.prediction.as_dict()["notes"] == result.prediction.notes
        else:
            assert result.prediction is None
            assert_one_line_error(result.error, hostile[name], expect)
    single = detector.predict(hostile["animated.webp"])  # the single-image API says the same
    assert single.notes == [EXPECTED["animated.webp"][1]]
    assert abs(single.p_fake - results[names.index("animated.webp")].prediction.p_fake) < 1e-5
    assert detector.predict(hostile["photo.bmp"].read_bytes()).p_fake == pytest.approx(
        results[names.index("photo.bmp")].prediction.p_fake, abs=1e-5)
    with pytest.raises(ImageLoadError, match="refused before decoding"):
        detector.predict(hostile["bomb_30000x30000.png"])


def test_cli_predict_reports_bad_files_one_line_each_and_scores_the_rest(
        trained_tiny_model: Path, hostile: dict[str, Path], capsys: pytest.CaptureFixture[str],
        one_thread: None) -> None:
    from hf_detector.cli import main

    folder = next(iter(hostile.values())).parent
    # the folder is walked for image extensions; other files, a missing path and the directory named
    # like an image (walked: it is empty) are given explicitly
    explicit = [hostile[n] for n in ("notes.txt", "page.html", "drawing.svg", "document.pdf", "missing.jpg",
                                     "folder_named.jpg")]
    code = main(["predict", str(folder), *map(str, explicit), "--model", str(trained_tiny_model),
                 "--format", "json", "--backend", "pytorch", "--batch-size", "8"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {Path(row["file"]).name: row for row in json.loads(out)}
    assert set(rows) == set(EXPECTED) - {"folder_named.jpg"}
    for name, row in rows.items():
        expect = EXPECTED[name][0]
        if expect == OK:
            assert row["error"] is None and row["label"] in {"real", "fake"} and 0 <= row["p_fake"] <= 1, row
        else:
            assert row["label"] == "error" and expect in row["error"].lower(), row
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == len(BAD) - 1  # one line per bad file, nothing else
    assert "Traceback" not in err
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: {hostile[name]}: {EXPECTED[name][1]}" for name in sorted(rows)
                     if EXPECTED[name][1]]
    for name in BAD:
        if name != "folder_named.jpg":
            assert sum(str(hostile[name]) in line for line in warnings) == 1, name


def test_cli_evaluate_skips_and_lists_unreadable_files(trained_tiny_model: Path, hostile: dict[str, Path],
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       one_thread: None) -> None:
    from conftest import make_image_folder

    from hf_detector.cli import main

    data = make_image_folder(tmp_path / "faces", per_class=4, size=48)
    bad = ["empty.jpg", "truncated.jpg", "bomb_30000x30000.png", "corrupt_idat.png"]
    odd = ["animated.gif", "cmyk.jpg", "grey_16bit.png", "exif_rotated.jpg"]
    for index, name in enumerate(bad + odd):
        (data / ("real" if index % 2 else "fake") / name).write_bytes(hostile[name].read_bytes())
    output = tmp_path / "eval" / "metrics.json"
    code = main(["evaluate", "--data", str(data), "--output", str(output), "--model", str(trained_tiny_model),
                 "--backend", "pytorch"])
    out, err = capsys.readouterr()
    assert code == 0, err
    record = json.loads(output.read_text())
    assert record["n_images"] == 16 and record["n_scored"] == 12 and record["n_errors"] == 4
    assert sorted(Path(e["file"]).name for e in record["errors"]) == sorted(bad)
    assert "4 unreadable files skipped" in err and "Traceback" not in err


def test_app_handlers_answer_every_file(detector, hostile: dict[str, Path]) -> None:
    import gradio as gr
    from test_app import load_app

    app = load_app()
    classify, classify_batch = app.make_classify(detector), app.make_classify_batch(detector)
    for name in EXPECTED:
        if name == "missing.jpg":  # an upload always exists on the server
            continue
        expect, note = EXPECTED[name]
        if expect == OK:
            label, verdict, *_ = classify(str(hostile[name]))
            assert label and verdict.startswith("### "), (name, verdict)
            if "first frame" in note:
                assert "first frame" in verdict, verdict
        else:
            with pytest.raises(gr.Error) as caught:
                classify(str(hostile[name]))
            message = caught.value.message
            assert message.startswith("This file cannot be analysed"), message
            assert str(hostile[name].parent) not in message and "\n" not in message
    files = [str(hostile[n]) for n in EXPECTED if n not in ("missing.jpg", "folder_named.jpg")]
    rows, csv_path, summary = classify_batch(files)
    assert len(rows) == len(files) and Path(csv_path).is_file()
    errors = {row[0] for row in rows if row[1] == "error"}
    assert errors == {Path(f).name for f in files if EXPECTED[Path(f).name][0] != OK}
    assert f"{len(files) - len(errors)} of {len(files)} files classified" in summary


# ------------------------------------------------------------------------------------------- pipeline()


# transformers' loader refuses what ours decodes (Pillow's own text-chunk limit); our loader drops the chunk
PIPELINE_REFUSES = {"png_ztxt_bomb.png": "Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK"}


def test_pipeline_on_hostile_files(trained_tiny_model: Path, hostile: dict[str, Path], detector,
                                   one_thread: None) -> None:
    from transformers import pipeline

    import hf_detector  # noqa: F401  (registers FaceImageProcessor)

    classifier = pipeline("image-classification", model=str(trained_tiny_model))
    clean = (OSError, ValueError, Image.DecompressionBombError)
    for name, (expect, _) in EXPECTED.items():
        if expect == OK and name not in PIPELINE_REFUSES:
            scores = {d["label"]: d["score"] for d in classifier(str(hostile[name]))}
            assert set(scores) == {"real", "fake"} and all(math.isfinite(s) for s in scores.values())
            continue
        with pytest.raises(clean) as caught:
            classifier(str(hostile[name]))
        message = str(caught.value)
        assert message and "\n" not in message.strip(), (name, message)
        assert PIPELINE_REFUSES.get(name, "") in message, (name, message)
    # Passing our decoded image gives exactly the CLI's numbers, also where transformers' loader differs.
    for name in ("grey_16bit.png", "palette_transparent.png", "animated.gif", "exif_rotated.jpg", "cmyk.jpg"):
        scores = {d["label"]: d["score"] for d in classifier(load_image(hostile[name]))}
        assert scores["fake"] == pytest.approx(detector.predict(hostile[name]).p_fake, abs=1e-5), name
    # our processor, given an oversized PIL image by a caller, answers with one clean error (7 MB in mode 1)
    with pytest.raises(ImageLoadError, match="above the 50 MP limit"):
        classifier.image_processor(images=Image.new("1", (8000, 7000)))
