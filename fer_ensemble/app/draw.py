"""Annotate images: a box per face with its label and confidence, colour per class."""
from __future__ import annotations

import numpy as np

# BGR colours, one per FER class (unknown names fall back to white).
COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (170, 60, 160), "happy": (30, 200, 240),
           "sad": (200, 120, 40), "surprise": (40, 160, 250), "neutral": (190, 190, 190),
           "contempt": (100, 100, 160)}


def annotate(image: np.ndarray, detections: list[dict]) -> np.ndarray:
    """A BGR copy of `image` with each detection's box and 'label 87%' drawn on it."""
    import cv2

    canvas = np.asarray(image)
    if canvas.ndim == 2 or canvas.shape[-1] == 1:
        canvas = cv2.cvtColor(canvas.reshape(canvas.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif canvas.shape[-1] == 4:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_BGRA2BGR)
    else:
        canvas = canvas.copy()
    thick = max(1, round(min(canvas.shape[:2]) / 300))
    scale = max(0.4, min(canvas.shape[:2]) / 800)
    for d in detections:
        x, y, w, h = d["box"]
        colour = COLOURS.get(d["label"], (255, 255, 255))
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thick + 1)
        text = f"{d['label']} {d['confidence']:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y - 4 if y - th - base - 4 >= 0 else y + h + th + 4
        cv2.rectangle(canvas, (x, ty - th - base), (x + tw + 4, ty + base), colour, -1)
        cv2.putText(canvas, text, (x + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return canvas
