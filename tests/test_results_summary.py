"""scripts/results_summary.py and the committed summary CSVs (results/<track>.csv): each CSV is what
the script writes from the committed sidecars and ensemble.json files today, and its accuracies are
the ones the prediction caches (NAME.preds.npz) give when recomputed from their probabilities and
labels, so a stale CSV, a sidecar that disagrees with its cache or a hand edit fails here."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
TRACKS = ["fer2013-cpu", "fer2013-cpu2h", "fer2013-cpu2h-probe", "fer2013-cpu-budget", "fer2013-gpu"]
summary = load_script("results_summary")


def _rows(track: str) -> list[dict]:
    with open(RESULTS / f"{track}.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _accuracy(proba: np.ndarray, y: np.ndarray) -> float:
    return 100 * float((proba.argmax(1) == y).mean())


@pytest.mark.parametrize("track", TRACKS)
def test_committed_csv_is_what_the_script_writes_now(track, tmp_path):
    out = tmp_path / f"{track}.csv"
    assert summary.main([str(RESULTS / track), "--out", str(out)]) == 0
    assert out.read_text() == (RESULTS / f"{track}.csv").read_text(), f"run `make results-summary` ({track})"


@pytest.mark.parametrize("track", TRACKS)
def test_member_accuracies_equal_the_caches(track):
    checked = 0
    for row in _rows(track):
        cache = RESULTS / track / row["run"] / f"{row['name']}.preds.npz"
        if row["kind"] != "member" or not cache.exists():
            continue
        z = np.load(cache)
        for split, column in (("val", "publictest_acc"), ("test", "privatetest_acc")):
            if f"{split}_y" in z and row[column]:
                assert float(row[column]) == pytest.approx(_accuracy(z[f"{split}_proba"], z[f"{split}_y"]),
                                                           abs=0.0051), (row["run"], row["name"], split)
                checked += 1
    members = sum(r["kind"] == "member" for r in _rows(track))
    assert checked >= members, f"{track}: {checked} accuracies checked for {members} members"


def test_plain_mean_ensembles_equal_the_mean_of_their_members_caches():
    """Every committed plain-mean ensemble whose members' caches lie in its run: the row's accuracies
    are the argmax of the members' averaged probabilities (the headline ensemble among them)."""
    checked = []
    for track in TRACKS:
        for row in _rows(track):
            run = RESULTS / track / row["run"]
            names = row["members"].split("+")
            manifest = json.loads((run / "ensemble.json").read_text()) if row["kind"] == "ensemble" else {}
            if manifest.get("method") != "mean" or manifest.get("weights") is not None or not all(
                    (run / f"{n}.preds.npz").exists() for n in names):
                continue
            caches = [np.load(run / f"{n}.preds.npz") for n in names]
            for split, column in (("val", "publictest_acc"), ("test", "privatetest_acc")):
                proba = sum(c[f"{split}_proba"] for c in caches) / len(caches)
                assert float(row[column]) == pytest.approx(_accuracy(proba, caches[0][f"{split}_y"]), abs=0.0051)
            checked.append(f"{track}/{row['run']}")
    assert {"fer2013-cpu/.", "fer2013-cpu2h/.", "fer2013-gpu/fer6", "fer2013-gpu/fer7"} <= set(checked)


def test_headline_ensemble_beats_every_member_of_its_track():
    rows = _rows("fer2013-cpu")
    ens = next(r for r in rows if r["kind"] == "ensemble" and r["run"] == ".")
    best = max(float(r["privatetest_acc"]) for r in rows if r["kind"] == "member" and r["run"] == ".")
    assert len(ens["members"].split("+")) == 24
    assert float(ens["privatetest_acc"]) == pytest.approx(73.28, abs=0.005)
    assert float(ens["privatetest_acc"]) - best == pytest.approx(2.09, abs=0.0051)


def _write_member(run: Path, name: str, val: float, test: float, **extra) -> None:
    meta = {"name": name, "builder": "vgg_v2", "spec": {"name": name}, "parameters": 10, "epochs_run": 3,
            "best_epoch": 2, "train_time_s": 5.0, "wall_time_s": 6.0, "tta": None,
            "metrics": {"val": {"accuracy": val}, "test": {"accuracy": test, "macro": {"f1": 0.5}}}, **extra}
    run.mkdir(parents=True, exist_ok=True)
    (run / f"{name}.json").write_text(json.dumps(meta))


def test_script_rows_runs_members_then_ensemble(tmp_path):
    track = tmp_path / "track"
    _write_member(track / "a", "m2", 0.5, 0.25, initialized_from={"name": "m1"}, tta="flip",
                  metrics_without_tta={"test": {"accuracy": 0.2}})
    _write_member(track / "a", "m1", 0.4, 0.3)
    (track / "a" / "ensemble.json").write_text(json.dumps(
        {"members": ["m1", "m2"], "method": "mean", "val_accuracy": 0.6, "test_accuracy": 0.55}))
    (track / "a" / "budget.json").write_text(json.dumps({"spec": {}, "metrics": {}, "name": "x"}))
    assert summary.main([str(track)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "track.csv")))
    assert [(r["run"], r["kind"], r["name"]) for r in rows] == [
        ("a", "member", "m1"), ("a", "member", "m2"), ("a", "ensemble", "ensemble")]
    assert rows[1]["init_from"] == "m1" and rows[1]["tta"] == "flip"
    assert (rows[1]["publictest_acc"], rows[1]["privatetest_acc"], rows[1]["privatetest_acc_no_tta"]) == (
        "50.00", "25.00", "20.00")
    assert (rows[2]["members"], rows[2]["privatetest_acc"]) == ("m1+m2", "55.00")
    assert not list(tmp_path.glob(".*tmp*"))


def test_script_refuses_an_empty_or_missing_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert summary.main([str(tmp_path / "empty")]) == 1
    assert summary.main([str(tmp_path / "missing")]) == 1
    assert not list(tmp_path.glob("*.csv"))
