"""Built-in synthetic faces: deterministic, procedurally drawn 48×48 expressions, no download.

Each class sets the mean of four expression parameters (mouth curve, mouth openness, brow slant
and height, eye openness); per-image jitter of those parameters overlaps neighbouring classes
(angry/disgust, fear/surprise, sad/neutral), and pose, lighting and noise vary, so a small CNN
learns it well above chance but clearly below 100%: ensembles have something to gain.
"""
from __future__ import annotations

import numpy as np

from .types import FER7_CLASSES, FerData, Split, to_fer6

# FER2013 class proportions over all 35,887 images.
FER2013_PROPORTIONS = np.array([4953, 547, 5121, 8989, 6077, 4002, 6198], dtype=np.float64) / 35887
# Per class: mouth curve (+ smile), mouth open, brow slant (+ inner ends down), brow raise, eye open.
_EXPRESSIONS = np.array([
    # curve  open   slant  raise  eyes
    [-0.25, 0.02, 0.55, -0.04, 0.65],  # angry
    [-0.40, 0.05, 0.40, -0.06, 0.45],  # disgust
    [-0.15, 0.22, -0.45, 0.10, 1.25],  # fear
    [0.55, 0.10, 0.00, 0.00, 0.85],    # happy
    [-0.40, 0.00, -0.45, 0.02, 0.75],  # sad
    [0.00, 0.42, -0.10, 0.16, 1.35],   # surprise
    [0.00, 0.00, 0.00, 0.00, 1.00],    # neutral
])
_JITTER = np.array([0.20, 0.08, 0.30, 0.06, 0.25])


MIN_SYNTHETIC = 30   # fewer leaves a split without images


def make_synthetic(n: int = 4000, seed: int = 0, classes: str = "fer7",
                   split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> FerData:
    """`n` synthetic faces split train/val/test (80/10/10 like FER2013), FER2013 class proportions."""
    if n < MIN_SYNTHETIC:
        raise ValueError(f"make_synthetic needs n >= {MIN_SYNTHETIC}, got {n}")
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(FER7_CLASSES), size=n, p=FER2013_PROPORTIONS)
    images = np.concatenate([_draw(labels[i:i + 2048], rng) for i in range(0, n, 2048)])
    n_train = int(round(n * split_fractions[0]))
    n_val = int(round(n * split_fractions[1]))
    cut = [0, n_train, n_train + n_val, n]
    splits = {s: Split(images[cut[i]:cut[i + 1]], labels[cut[i]:cut[i + 1]].astype(np.int64))
              for i, s in enumerate(("train", "val", "test"))}
    data = FerData(**splits, class_names=FER7_CLASSES, source=f"synthetic(n={n}, seed={seed})")
    if classes == "fer6":
        return to_fer6(data)
    if classes != "fer7":
        raise ValueError(f"classes must be 'fer7' or 'fer6', got {classes!r}")
    return data


def _draw(labels: np.ndarray, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """Render a batch of faces; every shape is a soft-edged distance test on a pixel grid."""
    n = labels.size
    f32 = np.float32
    p = (_EXPRESSIONS[labels] + rng.normal(size=(n, 5)) * _JITTER).astype(f32)
    curve, open_, slant, raise_, eyes = (p[:, i, None, None] for i in range(5))
    # Pose: centre, scale, rotation; face coordinates u (right) and v (down), face half-height = 1.
    cx = (size / 2 + rng.normal(0, 2.0, n)).astype(f32)
    cy = (size / 2 + rng.normal(0, 2.0, n)).astype(f32)
    scale = (size * rng.uniform(0.36, 0.46, n)).astype(f32)
    theta = rng.normal(0, 0.15, n).astype(f32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dx = (xx[None] - cx[:, None, None]) / scale[:, None, None]
    dy = (yy[None] - cy[:, None, None]) / scale[:, None, None]
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u, v = c * dx + s * dy, -s * dx + c * dy
    soft = scale[:, None, None] / 1.2  # one pixel in face units, for anti-aliased edges

    def inside(dist: np.ndarray) -> np.ndarray:  # dist < 0 inside; 0..1 coverage
        return np.clip(0.5 - dist * soft, 0.0, 1.0)

    skin = rng.uniform(0.55, 0.85, n).astype(f32)[:, None, None]
    back = rng.uniform(0.1, 0.6, n).astype(f32)[:, None, None]
    face = inside(np.sqrt((u / 0.78) ** 2 + v ** 2) - 1.0)
    img = back + (skin - back) * face
    au = np.abs(u)
    # Eyes: ellipses whose height follows eye openness.
    eye = inside(np.sqrt(((au - 0.34) / 0.15) ** 2 + ((v + 0.18) / (0.085 * np.maximum(eyes, 0.15))) ** 2) - 1.0)
    img -= 0.55 * skin * eye
    # Brows: thick segments above the eyes; slant > 0 lowers the inner ends (anger).
    brow_y = -0.45 - raise_ + slant * 0.35 * (0.5 - au)
    brow = inside(np.maximum(np.abs(v - brow_y) - 0.045, np.abs(au - 0.34) - 0.17) * 1.0)
    img -= 0.45 * skin * brow
    # Mouth: lip line v = m0 + curve*(1 - (u/w)^2); openness adds a dark gap under it.
    w = 0.34
    lip = 0.5 + curve * 0.18 * (1 - (u / w) ** 2)  # curve > 0: corners up
    mouth_lines = np.maximum(np.abs(v - lip - open_ * 0.5) - (0.03 + open_ * 0.5), au - w)
    img -= 0.5 * skin * inside(mouth_lines)
    # Lighting gradient, blur-free sensor noise, then 8-bit.
    light = rng.normal(0, 0.15, (n, 2)).astype(f32)
    img *= 1 + light[:, 0, None, None] * dx * 0.5 + light[:, 1, None, None] * dy * 0.5
    img *= rng.uniform(0.7, 1.2, n).astype(f32)[:, None, None]
    img += rng.standard_normal(img.shape, dtype=f32) * f32(0.06)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
