"""Safe image decoding shared by training, the CLI, the pipeline and the app.

Every entry point goes through `load_image`, so a hostile or odd file gives one clear
`ImageLoadError` naming the problem instead of a traceback, and every image that gets
through is an RGB `PIL.Image` with its EXIF orientation applied.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Refuse decompression bombs before decoding: 50 megapixels is a 8660x5773 photo, far above any
# face photo we need, and about 150 MB of RGB pixels.
MAX_IMAGE_PIXELS = 50_000_000
MAX_FILE_BYTES = 64 * 1024 * 1024
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


class ImageLoadError(ValueError):
    """An input that is not a usable image; the message is one readable line."""


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


def open_image(image: Image.Image, name: str = "image") -> Image.Image:
    """Validate and normalise an already-opened PIL image: size limit, first frame, EXIF, RGB."""
    _check_pixels(image, name)
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = ImageOps.exif_transpose(image) or image
        image.load()
        return to_rgb(image)
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, Image.DecompressionBombError) as error:
        raise ImageLoadError(f"{name}: cannot decode image ({_reason(error)})") from None


def load_image(source: str | os.PathLike | bytes | Image.Image, name: str | None = None) -> Image.Image:
    """Open a path, bytes or PIL image as an RGB image, or raise `ImageLoadError` with one line."""
    if isinstance(source, Image.Image):
        return open_image(source, name or "image")
    if isinstance(source, (bytes, bytearray)):
        label = name or "image bytes"
        if not source:
            raise ImageLoadError(f"{label}: empty file")
        if len(source) > MAX_FILE_BYTES:
            raise ImageLoadError(f"{label}: file is larger than {MAX_FILE_BYTES >> 20} MB")
        return _decode(io.BytesIO(bytes(source)), label)
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
        return _decode(io.BytesIO(handle.read()), label)


def _decode(stream: io.BytesIO, name: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
            image.draft(None, None)
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name}: not an image file (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(
            f"{name}: image is too large (above the {MAX_IMAGE_PIXELS / 1e6:.0f} MP limit, refused before decoding)"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageLoadError(f"{name}: cannot open image ({_reason(error)})") from None
    if image.format not in {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO"}:
        raise ImageLoadError(f"{name}: unsupported image format {image.format}")
    return open_image(image, name)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
