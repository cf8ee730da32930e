"""Data containers and class-name conventions shared by every loader."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError

FER7_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER6_CLASSES: tuple[str, ...] = ("angry", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS_CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
SPLITS: tuple[str, ...] = ("train", "val", "test")
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
# fer7 label -> fer6 label: disgust (1) joins angry (0), the rest shift down.
FER7_TO_FER6 = np.array([0, 0, 1, 2, 3, 4, 5], dtype=np.int64)

# Folder names seen in the common image-folder copies of FER2013, mapped to fer7 labels.
CLASS_ALIASES = {
    **{name: i for i, name in enumerate(FER7_CLASSES)},
    **{str(i): i for i in range(7)},
    "anger": 0, "disgusted": 1, "fearful": 2, "happiness": 3, "sadness": 4, "surprised": 5,
}


@dataclass
class Split:
    """One split: uint8 images (N, 48, 48), int64 labels (N,), optional soft targets (N, C)."""

    x: np.ndarray
    y: np.ndarray
    soft: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx: np.ndarray) -> "Split":
        return Split(self.x[idx], self.y[idx], None if self.soft is None else self.soft[idx])


@dataclass
class FerData:
    """FER2013-style data: Training / PublicTest / PrivateTest as train / val / test."""

    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    source: str = ""
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train.x.shape[1:3])  # type: ignore[return-value]

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def check_splits(self) -> None:
        """DataError naming the source unless every split has images (training needs a Training
        split to fit, PublicTest to choose epochs and members, PrivateTest to report)."""
        empty = [usage for usage, s in USAGE_TO_SPLIT.items() if len(self.split(s)) == 0]
        if empty:
            raise DataError(f"{self.source or 'data'}: no {', '.join(empty)} images; training needs "
                            "Training, PublicTest (validation) and PrivateTest (test) rows")

    def counts(self) -> dict[str, list[int]]:
        return {s: np.bincount(self.split(s).y, minlength=self.num_classes).tolist() for s in SPLITS}

    def fingerprint(self) -> str:
        """Short hash of images, labels and class names: artifacts from other data are refused."""
        h = hashlib.sha256()
        for s in SPLITS:
            sp = self.split(s)
            h.update(s.encode())
            h.update(np.ascontiguousarray(sp.x).tobytes())
            h.update(np.ascontiguousarray(sp.y.astype(np.int64)).tobytes())
            if sp.soft is not None:
                h.update(np.ascontiguousarray(sp.soft.astype(np.float32)).tobytes())
        h.update(",".join(self.class_names).encode())
        return h.hexdigest()[:16]

    def summary(self) -> str:
        lines = [f"source: {self.source}", f"classes ({self.num_classes}): {', '.join(self.class_names)}"]
        width = max(len(c) for c in self.class_names)
        header = " " * (width + 2) + "".join(f"{s:>8}" for s in SPLITS)
        lines.append(header)
        counts = self.counts()
        for c, name in enumerate(self.class_names):
            lines.append(f"  {name:<{width}}" + "".join(f"{counts[s][c]:>8}" for s in SPLITS))
        lines.append(f"  {'total':<{width}}" + "".join(f"{len(self.split(s)):>8}" for s in SPLITS))
        return "\n".join(lines)


def to_fer6(data: FerData) -> FerData:
    """Merge disgust into angry (the reference study's 6-class setting)."""
    if tuple(data.class_names) != FER7_CLASSES:
        raise ValueError(f"fer6 needs the 7 FER2013 classes, got {data.class_names}")
    splits = {s: Split(data.split(s).x, FER7_TO_FER6[data.split(s).y]) for s in SPLITS}
    return FerData(**splits, class_names=FER6_CLASSES, source=data.source, info=dict(data.info))
