"""`FaceEmotionDetector`: faces in an image -> boxes, labels and class probabilities in one batch."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..ensemble import Ensemble
from ..errors import DataError
from .faces import Detector, crop_faces, haar_detector, to_gray


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as a BGR (or gray) uint8 array; DataError naming the file when unreadable."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise DataError(f"{path}: not a readable image")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    return image


class FaceEmotionDetector:
    """Detect faces and classify their expression with an ensemble (or any saved run directory;
    by default the built-in FER2013 ensemble, `Ensemble.pretrained()`).

    `detector` is "haar" (OpenCV's cascade, `haar_detector`, by default on the image shrunk to
    half: `detect_scale`) or a callable gray image -> (K, 4) boxes x, y, w, h. The members'
    test-time augmentation views are off by default, for speed: `tta=True` adds them (the
    built-in ensemble: +0.4 points on PrivateTest for 1.6x the model's time).
    All faces of an image are cropped, resized to the ensemble's input size and predicted in one
    batch by the fused ensemble model.
    """

    def __init__(self, ensemble: Ensemble | str | os.PathLike | None = None, detector: str | Detector = "haar",
                 margin: float = 0.1, min_face: int = 48, detect_scale: float = 0.5, tta: bool = False):
        if ensemble is None:
            ensemble = Ensemble.pretrained()
        self.ensemble = ensemble if isinstance(ensemble, Ensemble) else Ensemble.load(ensemble)
        if not tta:
            self.ensemble = self.ensemble.without_tta()
        if detector == "haar":
            detector = haar_detector(min_size=min_face, detect_scale=detect_scale)
        elif not callable(detector):
            raise ValueError(f"detector must be 'haar' or a callable, got {detector!r}")
        self.find_faces: Callable = detector
        self.margin = margin
        self.class_names = list(self.ensemble.class_names)

    def detect(self, image: np.ndarray | str | os.PathLike) -> list[dict]:
        """[{box: [x, y, w, h], label, confidence, probabilities: {class: p}}] for every face,
        largest face first. `image` is an array (gray, BGR or BGRA) or a path to an image file."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list) -> list[list[dict]]:
        """`detect` for several images (video frames, say) with one prediction call for all faces."""
        grays, boxes = [], []
        for image in images:
            gray = to_gray(read_image(image) if isinstance(image, (str, os.PathLike)) else image)
            b = np.asarray(self.find_faces(gray)).reshape(-1, 4).astype(np.int64)
            b = b[np.argsort(-(b[:, 2] * b[:, 3]), kind="stable")]
            grays.append(gray)
            boxes.append(b)
        size = self.ensemble.input_size
        crops = [crop_faces(g, b, size, self.margin) for g, b in zip(grays, boxes)]
        flat = np.concatenate(crops) if crops else np.zeros((0, size, size), np.uint8)
        proba = self.ensemble.predict_proba(flat) if len(flat) else np.zeros((0, len(self.class_names)))
        out, i = [], 0
        for b in boxes:
            faces = []
            for box in b:
                p = proba[i]
                i += 1
                k = int(p.argmax())
                faces.append({"box": [int(v) for v in box], "label": self.class_names[k],
                              "confidence": float(p[k]),
                              "probabilities": {c: float(v) for c, v in zip(self.class_names, p)}})
            out.append(faces)
        return out
