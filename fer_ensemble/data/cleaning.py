"""Cleaning report: conflicting duplicates, images shared across splits, blank images."""
from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from .types import SPLITS, FerData, Split


def _hashes(x: np.ndarray) -> list[bytes]:
    flat = np.ascontiguousarray(x).reshape(len(x), -1) if len(x) else np.zeros((0, 0), np.uint8)
    return [hashlib.blake2b(row.tobytes(), digest_size=12).digest() for row in flat]


def cleaning_report(data: FerData, blank_std: float = 1.0) -> dict:
    """Find problem images. Indices refer to positions within each split.

    - conflicting_duplicates: identical images (any split) carrying different labels;
    - cross_split: identical images appearing in more than one split (leakage);
    - blank: images whose pixel standard deviation is below `blank_std` (constant images).
    """
    where: dict[bytes, list[tuple[str, int, int]]] = defaultdict(list)
    for s in SPLITS:
        sp = data.split(s)
        for i, h in enumerate(_hashes(sp.x)):
            where[h].append((s, i, int(sp.y[i])))
    conflicting, cross = [], []
    for occ in where.values():
        if len(occ) < 2:
            continue
        if len({lab for _, _, lab in occ}) > 1:
            conflicting.append([(s, i) for s, i, _ in occ])
        if len({s for s, _, _ in occ}) > 1:
            cross.append([(s, i) for s, i, _ in occ])
    blank = {s: _blank(data.split(s).x, blank_std) for s in SPLITS}
    return {
        "conflicting_duplicates": conflicting,
        "cross_split": cross,
        "blank": blank,
        "counts": {"conflicting_groups": len(conflicting), "cross_split_groups": len(cross),
                   "blank": {s: len(v) for s, v in blank.items()}},
    }


def _blank(x: np.ndarray, blank_std: float) -> list[int]:
    if not len(x):   # an empty split (a csv without PublicTest rows, say) has no blank images
        return []
    return np.flatnonzero(x.reshape(len(x), -1).std(axis=1) < blank_std).tolist()


def drop_flagged_from_train(data: FerData, report: dict | None = None) -> tuple[FerData, int]:
    """Remove flagged images from the training split only (val/test stay the official sets)."""
    report = report or cleaning_report(data)
    bad = set(report["blank"]["train"])
    for group in report["conflicting_duplicates"] + report["cross_split"]:
        bad.update(i for s, i in group if s == "train")
    keep = np.setdiff1d(np.arange(len(data.train)), np.fromiter(bad, dtype=np.int64, count=len(bad)))
    train: Split = data.train.subset(keep)
    out = FerData(train, data.val, data.test, data.class_names, data.source, dict(data.info))
    out.info["dropped_from_train"] = len(bad)
    return out, len(bad)
