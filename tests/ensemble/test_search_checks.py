"""The search validates before it writes: a bad cache, a bad option or too many folds is a clear
error naming the file or run, and ensemble.json / search.csv stay as they were."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from fer_ensemble.cli import main
from fer_ensemble.rundir import write_predictions, write_sidecar

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
BEFORE = {"members": ["m0"], "method": "mean", "note": "the previous search"}


def _proba(rng, n: int) -> np.ndarray:
    p = rng.random((n, len(CLASSES))) + 0.1
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture()
def run(tmp_path):
    """Three members' caches (3 validation images of the rarest class), a sidecar each, and an
    earlier search's ensemble.json and search.csv."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(7), [3, 5, 5, 6, 5, 5, 6])
    for i in range(3):
        write_predictions(tmp_path, f"m{i}", _proba(rng, len(y)), y, _proba(rng, len(y)), y, CLASSES)
        write_sidecar(tmp_path, f"m{i}", {"name": f"m{i}", "class_names": CLASSES, "model_file": f"m{i}.h5"})
    (tmp_path / "ensemble.json").write_text(json.dumps(BEFORE))
    (tmp_path / "search.csv").write_text("method,members\nmean,m0\n")
    return tmp_path


def _untouched(run) -> bool:
    return (json.loads((run / "ensemble.json").read_text()) == BEFORE and not (run / "search_cv.json").exists()
            and (run / "search.csv").read_text() == "method,members\nmean,m0\n")


def _rewrite(run, name: str, **change) -> None:
    with np.load(run / f"{name}.preds.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(change)
    with open(run / f"{name}.preds.npz", "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("change, message", [
    (lambda z: {"class_names": np.array(CLASSES[::-1])}, "m2.preds.npz: class_names differs from m0.preds.npz"),
    (lambda z: {"val_proba": np.where(np.arange(35)[:, None] == 4, np.nan, z["val_proba"])},
     r"m2.preds.npz: val_proba has NaN or infinite values \(rows 4\)"),
    (lambda z: {"val_proba": z["val_proba"][:, :6]},
     r"m2.preds.npz: val_proba has shape \(35, 6\), expected \(35, 7\) for 35 val_y labels and 7 classes"),
    (lambda z: {"val_proba": np.log(z["val_proba"])},
     r"m2.preds.npz: val_proba rows 0, 1, 2, .* are not probabilities"),
    (lambda z: {"test_y": np.full(35, 9)}, r"m2.preds.npz: test_y has labels outside 0-6"),
    (lambda z: {"test_y": np.roll(z["test_y"], 1)}, "m2.preds.npz: test_y differs from m0.preds.npz"),
])
def test_a_bad_cache_is_named_before_anything_is_written(run, capsys, change, message):
    with np.load(run / "m2.preds.npz") as z:
        _rewrite(run, "m2", **change(z))
    assert main(["search", str(run)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert _untouched(run)


def test_a_truncated_cache_is_named(run, capsys):
    data = (run / "m1.preds.npz").read_bytes()
    (run / "m1.preds.npz").write_bytes(data[:len(data) // 2])
    assert main(["search", str(run)]) == 2
    assert f"{run / 'm1.preds.npz'}: not a valid prediction cache" in capsys.readouterr().err
    assert _untouched(run)


@pytest.mark.parametrize("args, message", [
    (["--max-size", "0"], "need 1 <= min_size <= max_size <= 3, got 1, 0"),
    (["--cv-folds", "100", "--select", "cv"], "cv folds (100) exceed the smallest class's validation count "
                                              "(3 images of 'angry')"),
    (["--cv-folds", "4"], "cv folds (4) exceed the smallest class's validation count (3 images of 'angry')"),
    (["--cv-folds", "1"], "cv folds must be >= 2, got 1"),
])
def test_bad_search_options_are_refused_before_anything_is_written(run, capsys, args, message):
    assert main(["search", str(run), *args]) == 2
    assert f"error: {run}: {message}" in capsys.readouterr().err
    assert _untouched(run)


def test_a_member_without_a_cache_is_named_not_silently_dropped(run, capsys):
    write_sidecar(run, "late", {"name": "late", "class_names": CLASSES, "model_file": "late.h5"})
    assert main(["search", str(run)]) == 0
    out = capsys.readouterr().out
    assert "not searched, no NAME.preds.npz prediction cache (train them to the end, or import with --data): late" \
        in out
    assert "late" not in json.loads((run / "ensemble.json").read_text())["members"]
