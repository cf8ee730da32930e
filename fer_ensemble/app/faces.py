"""Face finding and cropping with OpenCV: the Haar cascade shipped inside opencv-python(-headless).

A detector is any callable `gray image (H, W) uint8 -> boxes (K, 4) as x, y, w, h`, so tests and
users can pass their own (a DNN detector, known boxes); `haar_detector()` builds the default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError

Detector = Callable[[np.ndarray], np.ndarray]
HAAR_FILE = "haarcascade_frontalface_default.xml"


def haar_detector(scale_factor: float = 1.12, min_neighbors: int = 2, min_size: int = 48,
                  detect_scale: float = 0.5) -> Detector:
    """OpenCV's frontal-face Haar cascade (no download: the XML ships with the OpenCV wheel).

    `detect_scale` < 1 runs the cascade on a copy of the image shrunk by that factor (boxes are
    mapped back): the cascade's time falls with the pixel count. The defaults (half size, scale
    steps of 1.12, 2 neighbours, faces from 48 px, FER2013's own size) find as many faces as the
    common full-size setting (1.1, 5 neighbours, 50 px: the `fer` package's) with fewer false
    boxes, in under half its time (`benchmarks/bench_haar.py`, docs/benchmarks.md). A shrunk face
    is covered by fewer overlapping windows, hence fewer neighbours. Faces under 48 px are not
    looked for: a classifier of 48x48 faces gains nothing from them."""
    import cv2

    if not 0 < detect_scale <= 1:
        raise ValueError(f"detect_scale must be in (0, 1], got {detect_scale!r}")
    path = Path(cv2.data.haarcascades) / HAAR_FILE
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise DataError(f"{path}: cannot load OpenCV's Haar cascade (is opencv-python-headless installed?)")

    def detect(gray: np.ndarray) -> np.ndarray:
        if detect_scale < 1:
            small = cv2.resize(gray, None, fx=detect_scale, fy=detect_scale, interpolation=cv2.INTER_AREA)
            side = max(1, int(round(min_size * detect_scale)))
            boxes = cascade.detectMultiScale(small, scaleFactor=scale_factor, minNeighbors=min_neighbors,
                                             minSize=(side, side))
            return np.rint(np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / detect_scale).astype(np.int64)
        boxes = cascade.detectMultiScale(gray, scaleFactor=scale_factor, minNeighbors=min_neighbors,
                                         minSize=(min_size, min_size))
        return np.asarray(boxes, dtype=np.int64).reshape(-1, 4)

    return detect


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 grayscale from a gray (H, W), (H, W, 1), BGR (H, W, 3) or BGRA (H, W, 4) image."""
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating) and image.size and image.max() <= 1.0:
            image = image * 255.0
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise DataError(f"expected an image shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {image.shape}")


def crop_faces(gray: np.ndarray, boxes: np.ndarray, size: int, margin: float = 0.1) -> np.ndarray:
    """(K, size, size) uint8 face crops: each box grown by `margin` of its side on every side and
    made square, with the border replicated where it leaves the image (FER2013 crops include some
    forehead and chin, which a tight Haar box cuts off)."""
    import cv2

    boxes = np.asarray(boxes).reshape(-1, 4)
    if not len(boxes):
        return np.zeros((0, size, size), np.uint8)
    sides = np.maximum(boxes[:, 2], boxes[:, 3]) * (1 + 2 * margin)
    pad = int(np.ceil(sides.max()))
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crops = []
    for (x, y, w, h), side in zip(boxes, sides):
        cx, cy, s = x + w / 2 + pad, y + h / 2 + pad, int(round(side))
        x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
        face = padded[y0:y0 + s, x0:x0 + s]
        interp = cv2.INTER_AREA if s >= size else cv2.INTER_LINEAR
        crops.append(cv2.resize(face, (size, size), interpolation=interp))
    return np.stack(crops)
