"""Formats people have: HEIC / HEIF (iPhone photos, through pillow-heif) and AVIF (Pillow's own decoder), in
`load_image`, the folder scanner, `hf-detector predict` / `evaluate`, the app's handlers and the metadata
reader. Every file is made here, in tmp_path, from a generated image or one of the app's example faces.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps, features

from hf_detector.data.images import IMAGE_EXTENSIONS, ImageLoadError, is_image_path, load_image

ROOT = Path(__file__).resolve().parent.parent
FACE = ROOT / "examples" / "real_ffhq_01002.jpg"

pillow_heif = pytest.importorskip("pillow_heif")
if not features.check("avif"):  # pragma: no cover
    pytest.skip("this Pillow has no AVIF codec", allow_module_level=True)

# format name for Pillow's save -> file suffixes
FORMATS = {"HEIF": (".heic", ".heif"), "AVIF": (".avif",)}


def _smooth(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """An image lossy codecs keep close (smooth gradients), with four distinct corners to see rotations."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    array = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), np.full_like(x, 90)], -1)
    array[: height // 4, : width // 4] = (250, 250, 250)  # a bright top-left corner
    return Image.fromarray(array.astype(np.uint8))


def _save(image: Image.Image, path: Path, fmt: str, orientation: int | None = None) -> Path:
    kwargs = {"quality": 95}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    image.save(path, format=fmt, **kwargs)
    return path


def _difference(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_image_decodes_heic_and_avif(fmt: str, tmp_path: Path) -> None:
    original = _smooth()
    for suffix in FORMATS[fmt]:
        path = _save(original, tmp_path / f"photo{suffix}", fmt)
        image = load_image(path)
        assert image.mode == "RGB" and image.size == original.size
        assert _difference(image, original) < 4.0, suffix  # lossy at quality 95: a few levels at most
        from_bytes = load_image(path.read_bytes())
        assert _difference(from_bytes, image) == 0.0


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_is_applied_once(fmt: str, orientation: int, tmp_path: Path) -> None:
    """HEIF stores the rotation as a transform that libheif applies; AVIF keeps the EXIF tag that the loader
    applies: both come out as a JPEG with the same tag would."""
    original = _smooth()
    reference_bytes = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    original.save(reference_bytes, format="PNG", exif=exif.tobytes())
    expected = ImageOps.exif_transpose(Image.open(reference_bytes)).convert("RGB")
    image = load_image(_save(original, tmp_path / f"rotated.{fmt.lower()}", fmt, orientation))
    assert image.size == expected.size
    assert _difference(image, expected) < 4.0


def test_folder_scanner_finds_the_new_formats(tmp_path: Path) -> None:
    from hf_detector.inference.detector import expand_paths

    for suffix in (".heic", ".heif", ".avif", ".hif"):
        assert suffix in IMAGE_EXTENSIONS and is_image_path(f"a{suffix}") and is_image_path(f"A{suffix.upper()}")
    (tmp_path / "sub").mkdir()
    _save(_smooth(), tmp_path / "one.heic", "HEIF")
    _save(_smooth(), tmp_path / "sub" / "two.HEIF", "HEIF")
    _save(_smooth(), tmp_path / "three.avif", "AVIF")
    (tmp_path / "notes.txt").write_text("not an image")
    found = sorted(Path(p).name for p in expand_paths([str(tmp_path)]))
    assert found == ["one.heic", "three.avif", "two.HEIF"]


def test_damaged_heic_is_one_line(tmp_path: Path) -> None:
    data = _save(_smooth(), tmp_path / "good.heic", "HEIF").read_bytes()
    truncated = tmp_path / "truncated.heic"
    truncated.write_bytes(data[:40])  # the ftyp box and the start of meta: recognisable, not readable
    with pytest.raises(ImageLoadError) as caught:
        load_image(truncated)
    message = str(caught.value)
    assert "\n" not in message and str(truncated) in message and "HEIF" in message, message
    # the header survives, the coded picture is cut off (a partial download): an error at decoding, one line
    broken = tmp_path / "broken.heic"
    broken.write_bytes(data[:-20])
    with pytest.raises(ImageLoadError) as caught:
        load_image(broken)
    assert "\n" not in str(caught.value) and str(broken) in str(caught.value)
    garbage = tmp_path / "garbage.avif"
    garbage.write_bytes(b"\x00\x00\x00\x1cftypavif" + bytes(64))
    with pytest.raises(ImageLoadError, match="AVIF") as caught:
        load_image(garbage)
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def face_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One of the app's example faces as JPEG, HEIC and AVIF."""
    folder = tmp_path_factory.mktemp("faces")
    face = Image.open(FACE).convert("RGB")
    jpeg = folder / "face.jpg"
    jpeg.write_bytes(FACE.read_bytes())
    return [jpeg, _save(face, folder / "face.heic", "HEIF"), _save(face, folder / "face.avif", "AVIF")]


def test_cli_predict_scores_heic_and_avif(face_files: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    from hf_detector.cli import main
    from hf_detector.inference.detector import Detector

    assert main(["predict", "--format", "json", *map(str, face_files)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["error"] for row in rows] == [None, None, None]
    assert all(row["face_found"] for row in rows)
    detector = Detector.from_pretrained()
    expected = [detector.predict(path).p_fake for path in face_files]
    np.testing.assert_allclose([row["p_fake"] for row in rows], expected, atol=1e-5)
    # the re-encoded copies of one face score like it (a sanity check on the decoding, not a model claim)
    assert max(abs(score - expected[0]) for score in expected) < 0.15


def test_cli_evaluate_reads_heic_and_avif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hf_detector.cli import main

    data = tmp_path / "data"
    for label in ("real", "fake"):
        (data / label).mkdir(parents=True)
        for index, example in enumerate(sorted((ROOT / "examples").glob(f"{label}_*.jpg"))):
            face = Image.open(example).convert("RGB")
            fmt, suffix = (("HEIF", ".heic"), ("AVIF", ".avif"))[index % 2]
            _save(face, data / label / f"{example.stem}{suffix}", fmt)
    output = tmp_path / "out" / "metrics.json"
    assert main(["evaluate", "--data", str(data), "--output", str(output)]) == 0
    record = json.loads(output.read_text())
    assert record["n_images"] == 4 and record["n_errors"] == 0, record.get("errors")


def test_app_handlers_take_heic_and_avif(face_files: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from hf_detector.app import ui
    from hf_detector.inference.detector import Detector

    detector = Detector.from_pretrained()
    classify = ui.make_classify(detector)
    for path in face_files[1:]:
        label, verdict, boxed, crop, _heatmap, hints = classify(str(path))
        assert label["decision"] in ("real", "fake") and verdict.startswith("### ")
        assert "No face" not in verdict and boxed is not None and crop is not None
        assert "not a readable image" not in hints
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in face_files[1:]:
            handle.write(path, f"phone/{path.name}")
    batch = ui.make_classify_batch(detector)
    rows, csv_path, summary = batch([str(archive), str(face_files[1])], progress=lambda *a, **k: None)
    assert [row[1] != "error" for row in rows] == [True, True, True], rows
    assert "3 of 3 files classified" in summary


def test_metadata_reader_opens_heic(tmp_path: Path) -> None:
    from hf_detector.signals.metadata import read_metadata

    exif = Image.Exif()
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = "iPhone 15"  # Model
    path = tmp_path / "phone.heic"
    _smooth().save(path, format="HEIF", quality=90, exif=exif.tobytes())
    report = read_metadata(path)
    assert report.format == "HEIF"
    assert "iPhone 15" in report.to_markdown()
