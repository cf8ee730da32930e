"""FER+ relabels (Barsoum et al. 2016): 10 crowd votes per FER2013 image, joined by row order."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import DataError
from .fer2013 import load_fer2013, read_fer_csv
from .types import (FER6_CLASSES, FER7_CLASSES, FER7_TO_FER6, FERPLUS_CLASSES, SPLITS, USAGE_TO_SPLIT,
                    FerData, Split)

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
    images, usage, votes = _votes_in_order(fer2013_path, ferplus_csv)
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


def _votes_in_order(fer2013_path: str | os.PathLike, ferplus_csv: str | os.PathLike
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, usage, votes (N, 10) in VOTE_COLUMNS order) of all rows, FER+ joined by row order."""
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
    images, usage = _rows_in_order(fer2013_path)
    if len(table) != len(images):
        raise DataError(f"{ferplus_csv}: {len(table)} rows but the FER2013 source has {len(images)}; "
                        "FER+ is joined by row order, so both must be complete")
    ferplus_usage = table["Usage"].astype(str).str.strip().to_numpy()
    if not (ferplus_usage == usage).all():
        r = int(np.flatnonzero(ferplus_usage != usage)[0])
        raise DataError(f"{ferplus_csv}: line {r + 2}: Usage differs from the FER2013 row; wrong row order?")
    try:
        votes = table[list(VOTE_COLUMNS)].to_numpy(dtype=np.float64)
    except ValueError as e:
        raise DataError(f"{ferplus_csv}: vote columns must be numbers ({e})") from None
    if not np.isfinite(votes).all() or (votes < 0).any():
        r = int(np.flatnonzero(~(np.isfinite(votes) & (votes >= 0)).all(axis=1))[0])
        raise DataError(f"{ferplus_csv}: line {r + 2}: votes must be finite and >= 0")
    return images, usage, votes


# FER+ emotion columns -> FER2013 (fer7) labels; contempt has no FER2013 class and is left out.
FERPLUS_TO_FER7 = {"anger": 0, "disgust": 1, "fear": 2, "happiness": 3, "sadness": 4, "surprise": 5, "neutral": 6}


def ferplus_train_votes(fer2013_path: str | os.PathLike, ferplus_csv: str | os.PathLike,
                        classes: str = "fer7") -> np.ndarray:
    """The FER+ crowd-vote distribution of every Training image over the FER2013 classes.

    float32 (N_train, 7) for fer7, or (N_train, 6) for fer6 (disgust votes join angry), rows in
    the order load_fer2013 gives the Training split. Contempt, unknown and not-a-face votes are
    dropped; a row with no emotion vote left is all zeros. Only Training rows are returned, so
    the FER+ votes of PublicTest and PrivateTest never reach a model.
    """
    if classes not in ("fer7", "fer6"):
        raise ValueError(f"classes must be 'fer7' or 'fer6', got {classes!r}")
    _, usage, votes = _votes_in_order(fer2013_path, ferplus_csv)
    v = votes[usage == "Training"]
    fer7 = np.zeros((len(v), len(FER7_CLASSES)), dtype=np.float64)
    for column, label in FERPLUS_TO_FER7.items():
        fer7[:, label] = v[:, VOTE_COLUMNS.index(column)]
    if classes == "fer6":
        fer7 = np.stack([fer7[:, FER7_TO_FER6 == c].sum(axis=1) for c in range(len(FER6_CLASSES))], axis=1)
    total = fer7.sum(axis=1, keepdims=True)
    return np.where(total > 0, fer7 / np.maximum(total, 1e-9), 0.0).astype(np.float32)


def attach_ferplus_votes(data: FerData, fer2013_path: str | os.PathLike,
                         ferplus_csv: str | os.PathLike) -> FerData:
    """`data` (loaded from `fer2013_path`) with its Training split's FER+ vote distributions in
    info["ferplus_votes"], for members whose spec sets ferplus_targets. Images, labels and the
    data fingerprint are unchanged."""
    if tuple(data.class_names) not in (FER7_CLASSES, FER6_CLASSES):
        raise DataError(f"{fer2013_path}: FER+ votes need FER2013's classes, not {', '.join(data.class_names)}")
    classes = "fer7" if tuple(data.class_names) == FER7_CLASSES else "fer6"
    votes = ferplus_train_votes(fer2013_path, ferplus_csv, classes=classes)
    if len(votes) != len(data.train):
        raise DataError(f"{ferplus_csv}: {len(votes)} Training rows but {fer2013_path} has {len(data.train)}")
    return replace(data, info={**data.info, "ferplus_votes": votes, "ferplus_csv": str(ferplus_csv)})


def blend_targets(y: np.ndarray, votes: np.ndarray, weight: float) -> np.ndarray:
    """Training targets (1 - weight) * one_hot(y) + weight * votes; rows without votes stay one-hot.

    With weight <= 0.5 no other class gets a larger target than the labelled one, so the crowd votes
    only reshape how the rest of the probability mass is spread (an informed label smoothing)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight!r}")
    if votes.ndim != 2 or len(votes) != len(y):
        raise ValueError(f"votes have shape {votes.shape}, expected ({len(y)}, num_classes)")
    one_hot = np.eye(votes.shape[1], dtype=np.float32)[y]
    has_votes = votes.sum(axis=1, keepdims=True) > 0
    return np.where(has_votes, (1.0 - weight) * one_hot + weight * votes, one_hot).astype(np.float32)


__all__ = ["load_ferplus", "ferplus_train_votes", "attach_ferplus_votes", "blend_targets", "FERPLUS_TO_FER7", "VOTE_COLUMNS",
           "load_fer2013", "SPLITS"]


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
