"""Test-time augmentation views: which transformed copies of an image a member is averaged over.

A member's sidecar names its mode in `"tta"`; the prediction cache (`fer-ensemble tta`), the loop
over members and the fused Keras model (`layers.Shift`, `layers.HorizontalFlip`) all build the same
views from this module, so the three agree.

- "flip": the image and its mirror image (2 views).
- "flip-shift": those two, each also shifted by `shift_pixels(size)` pixels up, down, left and
  right (10 views). Borders are filled with the nearest pixel, as in the training augmentation
  (`RandomTranslation(fill_mode="nearest")`), so the shifted views stay within what the members
  saw in training.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import EnsembleError

MODES = ("flip", "flip-shift")


class View(NamedTuple):
    flip: bool
    dy: int    # content moves down by dy pixels (up when negative)
    dx: int    # content moves right by dx pixels (left when negative)


def shift_pixels(size: int) -> int:
    """The shift of "flip-shift": 2 pixels at 48×48, scaled with the member's input size."""
    return max(1, round(size / 24))


def check_mode(mode: str | None, where: str = "", allow_none: bool = True) -> None:
    """Refuse a TTA mode this version does not know; `where` (a file) prefixes the message. None
    (a member without TTA) is allowed unless `allow_none` is False."""
    if (mode is not None or not allow_none) and mode not in MODES:
        raise EnsembleError(f"{where + ': ' if where else ''}unknown test-time augmentation {mode!r}; "
                            f"known: {', '.join(MODES)}")


def tta_views(mode: str | None, size: int) -> list[View]:
    """The views a member in `mode` is averaged over; the identity comes first."""
    check_mode(mode)
    if mode is None:
        return [View(False, 0, 0)]
    offsets = [(0, 0)]
    if mode == "flip-shift":
        s = shift_pixels(size)
        offsets += [(-s, 0), (s, 0), (0, -s), (0, s)]
    return [View(f, dy, dx) for f in (False, True) for dy, dx in offsets]


def apply_view(batch: np.ndarray, view: View) -> np.ndarray:
    """(N, H, W, C) images transformed by `view` (numpy; `layers.Shift` is the graph twin)."""
    x = batch[:, :, ::-1] if view.flip else batch
    if view.dy or view.dx:
        h, w = x.shape[1:3]
        s = max(abs(view.dy), abs(view.dx))
        padded = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
        x = padded[:, s - view.dy:s - view.dy + h, s - view.dx:s - view.dx + w]
    return x


def view_probabilities(model, batch: np.ndarray, mode: str | None, batch_size: int = 256) -> list[np.ndarray]:
    """A member's probabilities for each view of `mode`, the identity first (batch already prepared)."""
    return [model.predict(apply_view(batch, v), batch_size=batch_size, verbose=0)
            for v in tta_views(mode, batch.shape[1])]


def average(per_view: list[np.ndarray]) -> np.ndarray:
    """The mean of per-view probabilities, summed in view order as the fused model's Average does."""
    total = per_view[0]
    for p in per_view[1:]:
        total = total + p
    return total / len(per_view)


def predict_views(model, batch: np.ndarray, mode: str | None, batch_size: int = 256) -> np.ndarray:
    """A member's probabilities averaged over the views of `mode` (batch already prepared)."""
    return average(view_probabilities(model, batch, mode, batch_size))
