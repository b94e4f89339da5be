"""Safe image decoding shared by training, the CLI, the pipeline and the app.

Every entry point goes through `load_image`, so a hostile or odd file gives one clear
`ImageLoadError` naming the problem instead of a traceback, and every image that gets
through is an RGB `PIL.Image` with its EXIF orientation applied.

Formats: JPEG (and MPO), PNG, WebP, BMP, TIFF, GIF, AVIF (Pillow >= 11.3 decodes it itself) and HEIC / HEIF
(iPhone photos: `pillow-heif`, registered here as a Pillow plugin, so `Image.open` anywhere in the process
reads them once this module is imported).
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Refuse decompression bombs before decoding: 50 megapixels is a 8660x5773 photo, far above any
# face photo we need, and about 150 MB of RGB pixels.
MAX_IMAGE_PIXELS = 50_000_000
MAX_FILE_BYTES = 64 * 1024 * 1024
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif", ".heic", ".heif",
                    ".hif")
# The formats `load_image` decodes (Pillow's `image.format` names; HEIF covers .heic and .heif)
FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF", "AVIF", "HEIF")

try:  # HEIC / HEIF through pillow-heif (a core dependency); without it such a file gets a one-line hint
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_AVAILABLE = True
except ImportError:  # pragma: no cover (an install without pillow-heif)
    HEIF_AVAILABLE = False

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# Pillow warns between 1x and 2x MAX_IMAGE_PIXELS and raises above; `_check_pixels` refuses everything above
# 1x before decoding, so the warning adds nothing. A filter, not `warnings.catch_warnings()`, because the
# latter is not thread-safe and `Detector.iter_files` decodes in a thread pool.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# What `load_image` did to an input beyond plain decoding (first frame of an animation, metadata it had
# to ignore) is recorded on the returned image, in `image.info[NOTES_KEY]`; `input_notes` reads it.
NOTES_KEY = "hf_detector.notes"

# A JPEG decoded at reduced size (Pillow's `draft`: libjpeg scales by 1/2, 1/4 or 1/8 in the DCT domain)
# records the size of the full picture here, (width, height) after EXIF orientation, so the resolution cap
# computes the same target size and the face box is reported in full-size pixels.
FULL_SIZE_KEY = "hf_detector.full_size"
# The draft keeps at least this many times the requested shorter side: the Lanczos reduction that follows
# still has real pixels to average, as it had from the full picture. HF_DETECTOR_JPEG_DRAFT=0 switches it off.
# 2 (a 12-MP photo decoded at 1/4): on bench/startup.py's 40 12-MP photos the bundled model's scores move from
# the full decode's by at most 0.033 (mean 0.009), half of what an invisible +-1 level of noise on the full
# decode's reduced picture does (up to 0.067) and less than an exact Lanczos of the full decode (0.087); a
# margin of 3 moved them more, not less, on an earlier model (0.143 vs 0.096) and decodes twice the pixels
# (docs/performance.md).
DRAFT_MARGIN = 2

# Signatures of the formats we decode: a file that starts like one but cannot be opened is damaged,
# not "not an image".
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
               (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))
# ISO base media files (HEIF, AVIF): an `ftyp` box at offset 4 whose major or compatible brands say which
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
# Exceptions Pillow's decoders raise on hostile data (struct.error, EOFError and IndexError included).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, EOFError, IndexError, KeyError, struct.error,
                  MemoryError, Image.DecompressionBombError)


class ImageLoadError(ValueError):
    """An input that is not a usable image; the message is one readable line."""


def input_notes(image: Image.Image | None) -> list[str]:
    """Notes `load_image` recorded on this image (e.g. "animated GIF, 3 frames: first frame used")."""
    if image is None:
        return []
    return list(getattr(image, "info", {}).get(NOTES_KEY, ()))


def _add_note(image: Image.Image, note: str) -> None:
    image.info[NOTES_KEY] = (*image.info.get(NOTES_KEY, ()), note)


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _check_pixels(image: Image.Image, name: str) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageLoadError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageLoadError(
            f"{name}: image is {width}x{height} = {width * height / 1e6:.0f} megapixels, "
            f"above the {MAX_IMAGE_PIXELS / 1e6:.0f} MP limit (refused before decoding)"
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode (16-bit, CMYK, palette with transparency, LA/RGBA, ...) to RGB.

    Transparent pixels are composited on white so that an RGBA face does not turn black.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        high = array.max() if array.size else 1.0
        scale = 255.0 / high if high > 255 else 1.0
        array = np.clip(array * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def open_image(image: Image.Image, name: str = "image", owned: bool = False) -> Image.Image:
    """Validate and normalise an already-opened PIL image: size limit, first frame, EXIF, RGB.

    `owned`: the image was opened here and may be transposed in place (no full-size copy); a caller's
    image is never modified.
    """
    _check_pixels(image, name)
    notes = input_notes(image)
    try:
        frames = getattr(image, "n_frames", 1) or 1
        if frames > 1:
            kind = image.format or "image"
            image.seek(0)
            image.load()
            # a plain single-frame image, so nothing downstream sees (or re-reports) the animation
            image, owned = image.copy(), True
            notes.append(f"animated {kind} with {frames} frames: only the first frame was used")
        image.load()
        orientation = image.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8) and FULL_SIZE_KEY in image.info:  # a quarter turn: the sides swap
            image.info[FULL_SIZE_KEY] = tuple(reversed(image.info[FULL_SIZE_KEY]))
        if orientation not in (None, 1):
            if owned:
                ImageOps.exif_transpose(image, in_place=True)
            else:
                image = ImageOps.exif_transpose(image) or image
        rgb = to_rgb(image)
    except ImageLoadError:
        raise
    except _DECODE_ERRORS as error:
        raise ImageLoadError(f"{name}: cannot decode image ({_reason(error)})") from None
    except Exception as error:  # any other decoder failure on untrusted bytes is still "cannot decode"
        raise ImageLoadError(f"{name}: cannot decode image ({type(error).__name__}: {_reason(error)})") from None
    if notes and not input_notes(rgb):
        if rgb is image and not owned:
            rgb = rgb.copy()  # never write our notes into the caller's image
        for note in notes:
            _add_note(rgb, note)
    return rgb


def load_image(source: str | os.PathLike | bytes | Image.Image, name: str | None = None,
               reduce_to: int = 0) -> Image.Image:
    """Open a path, bytes or PIL image as an RGB image, or raise `ImageLoadError` with one line.

    `reduce_to` > 0: the caller will reduce the picture to this shorter side anyway (the processor's
    resolution cap), so a large JPEG may be decoded at a reduced size (at least DRAFT_MARGIN x that side;
    `FULL_SIZE_KEY` in `info` then gives the full size). A PIL image is never re-decoded.
    """
    if isinstance(source, Image.Image):
        return open_image(source, name or "image")
    if isinstance(source, (bytes, bytearray)):
        label = name or "image bytes"
        if not source:
            raise ImageLoadError(f"{label}: empty file")
        if len(source) > MAX_FILE_BYTES:
            raise ImageLoadError(f"{label}: file is larger than {MAX_FILE_BYTES >> 20} MB")
        return _decode(io.BytesIO(bytes(source)), label, reduce_to)
    path = Path(source)
    label = name or str(path)
    if not path.exists():
        raise ImageLoadError(f"{label}: no such file")
    if path.is_dir():
        raise ImageLoadError(f"{label}: is a directory, not an image file")
    size = path.stat().st_size
    if size == 0:
        raise ImageLoadError(f"{label}: empty file")
    if size > MAX_FILE_BYTES:
        raise ImageLoadError(f"{label}: file is {size >> 20} MB, above the {MAX_FILE_BYTES >> 20} MB limit")
    with open(path, "rb") as handle:
        return _decode(io.BytesIO(handle.read()), label, reduce_to)


def _draft(image: Image.Image, reduce_to: int) -> None:
    """Ask libjpeg for a reduced decode when the picture is more than DRAFT_MARGIN x larger than needed; else
    fix the full-size decode (Pillow honours only the first `draft` call, so nothing later can change it)."""
    if (not reduce_to or image.format != "JPEG" or os.environ.get("HF_DETECTOR_JPEG_DRAFT", "1") == "0"
            or min(image.size) <= DRAFT_MARGIN * reduce_to):
        image.draft(None, None)
        return
    full = image.size
    scale = DRAFT_MARGIN * reduce_to / min(full)
    # draft picks the largest DCT scaling whose result is still >= the requested size on both sides
    image.draft(image.mode, (max(1, int(full[0] * scale) + 1), max(1, int(full[1] * scale) + 1)))
    if image.size != full:
        image.info[FULL_SIZE_KEY] = full


def _decode(stream: io.BytesIO, name: str, reduce_to: int = 0) -> Image.Image:
    note = None
    try:
        try:
            image = Image.open(stream)
        except ValueError as error:
            # Pillow refuses a PNG whose text chunks inflate beyond MAX_TEXT_CHUNK / MAX_TEXT_MEMORY (a
            # metadata bomb). The pixels do not depend on text: decode without those chunks.
            data = stream.getvalue()
            if not (data.startswith(_SIGNATURES[0][0]) and "text" in str(error).lower()):
                raise
            image = Image.open(io.BytesIO(_strip_png_text(data)))
            note = "oversized PNG text metadata was ignored"
        _draft(image, reduce_to)
    except UnidentifiedImageError:
        kind = _sniff(stream.getvalue())
        if kind == "HEIF" and not HEIF_AVAILABLE:
            raise ImageLoadError(f"{name}: HEIC/HEIF needs pillow-heif (pip install pillow-heif)") from None
        if kind == "AVIF" and not _pillow_reads_avif():
            raise ImageLoadError(f"{name}: this Pillow cannot decode AVIF (pip install 'pillow>=11.3')") from None
        if kind:
            raise ImageLoadError(f"{name}: damaged {kind} file (its header cannot be read)") from None
        raise ImageLoadError(f"{name}: not an image file (unrecognised format)") from None
    except Image.DecompressionBombError:
        raise ImageLoadError(
            f"{name}: image is too large (above the {MAX_IMAGE_PIXELS / 1e6:.0f} MP limit, refused before decoding)"
        ) from None
    except _DECODE_ERRORS as error:
        raise ImageLoadError(f"{name}: cannot open image ({_reason(error)})") from None
    except Exception as error:  # a decoder bug on hostile bytes is still a bad file, never a traceback
        raise ImageLoadError(f"{name}: cannot open image ({type(error).__name__}: {_reason(error)})") from None
    if image.format not in FORMATS:
        raise ImageLoadError(f"{name}: unsupported image format {image.format}")
    if note:
        _add_note(image, note)
    return open_image(image, name, owned=True)


def _sniff(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        (size,) = struct.unpack(">I", data[:4]) if len(data) >= 4 else (0,)
        box = data[8:min(max(size, 16), 256)]  # major brand, minor version, compatible brands
        brands = {box[i:i + 4] for i in range(0, len(box), 4) if i != 4}
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & _HEIF_BRANDS:
            return "HEIF"
    return next((kind for signature, kind in _SIGNATURES if data.startswith(signature)), None)


def _pillow_reads_avif() -> bool:
    from PIL import features

    try:
        return bool(features.check("avif"))
    except (ValueError, ImportError):  # a Pillow that does not know the feature
        return False


def _strip_png_text(data: bytes) -> bytes:
    """The PNG without its tEXt / zTXt / iTXt chunks (bounded walk; a malformed tail is cut off)."""
    out, offset = [data[:8]], 8
    while offset + 12 <= len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        end = offset + 12 + length
        if end > len(data):
            break
        if data[offset + 4:offset + 8] not in _PNG_TEXT_CHUNKS:
            out.append(data[offset:end])
        offset = end
    return b"".join(out)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
