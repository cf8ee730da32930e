"""FER+ relabels (Barsoum et al. 2016): 10 crowd votes per FER2013 image, joined by row order."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .fer2013 import load_fer2013, read_fer_csv
from .types import FERPLUS_CLASSES, SPLITS, USAGE_TO_SPLIT, FerData, Split

VOTE_COLUMNS = (*FERPLUS_CLASSES, "unknown", "NF")


def load_ferplus(fer2013_path: str | os.PathLike, ferplus_csv: str | os.PathLike,
                 mode: str = "majority") -> FerData:
    """FER2013 images with FER+ labels (8 classes).

    majority: keep images whose single top vote is an emotion (drop unknown / not-a-face tops
    and ties), as the FER+ paper does. distribution: keep images whose top vote is an emotion and
    attach the normalised 8-emotion vote distribution as `soft` targets (y is its argmax).
    """
    if mode not in ("majority", "distribution"):
        raise ValueError(f"mode must be 'majority' or 'distribution', got {mode!r}")
    import pandas as pd

    ferplus_csv = Path(ferplus_csv)
    try:
        table = pd.read_csv(ferplus_csv)
    except (OSError, ValueError) as e:
        raise DataError(f"{ferplus_csv}: cannot read FER+ csv ({e})") from e
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in ("Usage", *VOTE_COLUMNS) if c not in table.columns]
    if missing:
        raise DataError(f"{ferplus_csv}: missing column(s) {', '.join(missing)}")
    base = _rows_in_order(fer2013_path)
    images, usage = base
    if len(table) != len(images):
        raise DataError(f"{ferplus_csv}: {len(table)} rows but the FER2013 source has {len(images)}; "
                        "FER+ is joined by row order, so both must be complete")
    if not (table["Usage"].astype(str).str.strip().to_numpy() == usage).all():
        r = int(np.flatnonzero(table["Usage"].astype(str).str.strip().to_numpy() != usage)[0])
        raise DataError(f"{ferplus_csv}: line {r + 2}: Usage differs from the FER2013 row; wrong row order?")
    votes = table[list(VOTE_COLUMNS)].to_numpy(dtype=np.float64)
    top = votes.max(axis=1)
    winner = votes.argmax(axis=1)
    n_top = (votes == top[:, None]).sum(axis=1)
    emotion_top = winner < len(FERPLUS_CLASSES)
    if mode == "majority":
        keep = emotion_top & (n_top == 1) & (top > 0)
        soft_all = None
    else:
        keep = emotion_top & (top > 0)
        emo = votes[:, :len(FERPLUS_CLASSES)]
        soft_all = (emo / np.maximum(emo.sum(axis=1, keepdims=True), 1e-9)).astype(np.float32)
    splits = {}
    for usage_name, split in USAGE_TO_SPLIT.items():
        idx = np.flatnonzero(keep & (usage == usage_name))
        splits[split] = Split(images[idx], winner[idx].astype(np.int64),
                              None if soft_all is None else soft_all[idx])
    info = {"ferplus_mode": mode, "dropped": int((~keep).sum()), "row_index": {
        s: np.flatnonzero(keep & (usage == u)).tolist() for u, s in USAGE_TO_SPLIT.items()}}
    return FerData(**splits, class_names=FERPLUS_CLASSES, source=f"{fer2013_path} + {ferplus_csv}", info=info)


def _rows_in_order(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """All FER2013 images in csv row order with their Usage (needed for the row-order join)."""
    path = Path(path)
    if path.suffix == ".npz":
        z = np.load(path, allow_pickle=False)
        if {"images", "labels", "usage"} <= set(z.files):
            return z["images"], z["usage"].astype(str)
        raise DataError(f"{path}: FER+ needs FER2013 in csv row order (the official csv, or an .npz "
                        "with images/labels/usage arrays)")
    if path.is_dir():
        raise DataError(f"{path}: FER+ needs FER2013 in csv row order; image folders lose it")
    _, usage, images = read_fer_csv(path)
    return images, usage


__all__ = ["load_ferplus", "VOTE_COLUMNS", "load_fer2013", "SPLITS"]


def simulate_ferplus(data: FerData, annotators: int = 10, agree: float = 0.6, seed: int = 0) -> FerData:
    """FER+-style majority labels for a data set without FER+ votes (the synthetic faces): each of
    `annotators` simulated taggers gives the data's label with probability `agree`, else a random
    other class; images are kept when one class has the most votes (ties dropped), as FER+ does.
    Only the FER+ procedure is simulated here; its real effect needs FER2013 with fer2013new.csv."""
    rng = np.random.default_rng(seed)
    k = data.num_classes
    splits, dropped, rows = {}, 0, {}
    for name in ("train", "val", "test"):
        s = data.split(name)
        wrong = (s.y[:, None] + rng.integers(1, k, (len(s), annotators))) % k
        votes_for = np.where(rng.random((len(s), annotators)) < agree, s.y[:, None], wrong)
        votes = np.stack([(votes_for == c).sum(axis=1) for c in range(k)], axis=1)
        top = votes.max(axis=1)
        keep = (votes == top[:, None]).sum(axis=1) == 1
        dropped += int((~keep).sum())
        rows[name] = np.flatnonzero(keep).tolist()
        splits[name] = Split(s.x[keep], votes.argmax(axis=1)[keep].astype(np.int64))
    return FerData(**splits, class_names=data.class_names,
                   source=f"{data.source} + simulated FER+ majority ({annotators} taggers, agree={agree})",
                   info={"ferplus_mode": "simulated majority", "dropped": dropped, "row_index": rows})
