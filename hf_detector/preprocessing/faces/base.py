"""What every face detector returns: `Face` (box, score, landmarks) and what framing returns: `FaceCrop`.

Stage: preprocessing (imports data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass
class Face:
    """One detected face. Coordinates are pixels of the original image."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    # mtcnn (5, 2): left eye, right eye, nose, mouth left, mouth right (left = the image's left);
    # blazeface (4, 2): left eye, right eye, nose tip, mouth centre
    landmarks: np.ndarray | None = None
    scheme: str = "mtcnn"  # which TEMPLATES entry the landmarks follow

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    def scaled(self, factor: float) -> Face:
        """The same face in an image `factor` times larger."""
        landmarks = None if self.landmarks is None else self.landmarks * factor
        return Face(box=tuple(float(v) * factor for v in self.box), score=self.score, landmarks=landmarks,
                    scheme=self.scheme)


@dataclass
class FaceCrop:
    image: Image.Image  # RGB, size x size
    face: Face | None
    method: str  # "aligned" | "box" | "context" | "center"
    # Fraction of the output that lies outside the source image (filled by the border mode).
    # Tight-crop sources (mostly reals here) need much more fill than FFHQ-style fakes: a cue
    # the caller should watch (see transforms.random_zoom_out, which adds fill to both classes).
    outside: float = 0.0


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    from ...data.images import to_rgb  # handles 16-bit, CMYK, transparency

    return to_rgb(image)
