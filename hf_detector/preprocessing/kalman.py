"""Kalman denoising (the prototype's): a random-walk Kalman filter + RTS smoother over rows and columns.

Stage: preprocessing (imports nothing else of the package).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _kalman_gains(n: int, q: float, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Filter gains K_t and RTS smoother gains C_t for a random walk observed in noise.

    With a random-walk model both depend only on Q, R and t, not on the data, so they are
    computed once per line length and shared by every row and channel.
    """
    gains = np.empty(n)
    smooth = np.empty(n)
    p = r  # P_0: first measurement taken as the initial estimate, with its noise
    gains[0] = 1.0
    for t in range(1, n):
        p_pred = p + q
        gains[t] = p_pred / (p_pred + r)
        smooth[t - 1] = p / p_pred  # C_{t-1} = P_{t-1|t-1} / P_{t|t-1}
        p = (1.0 - gains[t]) * p_pred
    smooth[n - 1] = 0.0
    return gains, smooth


def _kalman_smooth_axis0(z: np.ndarray, q: float, r: float) -> np.ndarray:
    """Kalman filter + RTS smoother along axis 0 of a 2-D array (n, m): loops over n, vectorised over m."""
    n = z.shape[0]
    if n < 2:
        return z.copy()
    gains, smooth = _kalman_gains(n, q, r)
    x = np.empty_like(z)
    x[0] = z[0]
    for t in range(1, n):  # forward filter; prediction x_{t|t-1} = x_{t-1|t-1}
        x[t] = x[t - 1] + gains[t] * (z[t] - x[t - 1])
    for t in range(n - 2, -1, -1):  # RTS backward pass
        x[t] += smooth[t] * (x[t + 1] - x[t])
    return x


def kalman_denoise(
    image: np.ndarray,
    process_noise: float = 1e-3,
    measurement_noise: float = 1e-2,
    mode: str = "sequential",
) -> np.ndarray:
    """Denoise a float image in [0, 1] (HxW or HxWxC) with a scalar Kalman filter + RTS smoother.

    State model: x_t = x_{t-1} + w, w ~ N(0, Q=process_noise); z_t = x_t + v, v ~ N(0, R=measurement_noise).
    Run along each row, then along each column ("sequential", 2-D smoothing) or both on the input
    and averaged ("average"). Returns the same shape and dtype, clipped to [0, 1].
    """
    array = np.asarray(image)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"kalman_denoise expects a float image in [0, 1], got dtype {array.dtype}")
    if array.ndim not in (2, 3):
        raise ValueError(f"kalman_denoise expects HxW or HxWxC, got shape {array.shape}")
    if process_noise <= 0 or measurement_noise <= 0:
        raise ValueError("process_noise and measurement_noise must be > 0")
    if mode not in ("sequential", "average"):
        raise ValueError(f"mode must be 'sequential' or 'average', got {mode!r}")
    if array.size == 0:
        return array.copy()
    work = array.astype(np.float32 if array.dtype.itemsize <= 4 else np.float64)
    cube = work if work.ndim == 3 else work[:, :, None]
    height, width, channels = cube.shape
    q, r = float(process_noise), float(measurement_noise)

    def along_rows(c: np.ndarray) -> np.ndarray:
        # (W, H*C) contiguous so each step of the column loop touches one contiguous slab
        z = np.ascontiguousarray(c.transpose(1, 0, 2)).reshape(width, height * channels)
        return _kalman_smooth_axis0(z, q, r).reshape(width, height, channels).transpose(1, 0, 2)

    def along_columns(c: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(c).reshape(height, width * channels)
        return _kalman_smooth_axis0(z, q, r).reshape(height, width, channels)

    if mode == "sequential":
        out = along_columns(along_rows(cube))
    else:
        out = 0.5 * (along_rows(cube) + along_columns(cube))
    out = np.clip(out, 0.0, 1.0).reshape(array.shape)
    return out.astype(array.dtype, copy=False)


def kalman_denoise_pil(
    image: Image.Image,
    process_noise: float = 1e-3,
    measurement_noise: float = 1e-2,
    mode: str = "sequential",
) -> Image.Image:
    """`kalman_denoise` on an RGB PIL image (8-bit in, 8-bit out)."""
    array = np.asarray(_rgb(image), dtype=np.float32) / 255.0
    out = kalman_denoise(array, process_noise, measurement_noise, mode)
    return Image.fromarray(np.round(out * 255.0).astype(np.uint8))
