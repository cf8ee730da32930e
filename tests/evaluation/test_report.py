"""`fer-ensemble report`: tables from the caches, figures, links, data resolution, caches-only runs."""
from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_ensemble.ensemble import cv_run, load_caches, search_run
from fer_ensemble.errors import FerEnsembleError
from fer_ensemble.evaluation import per_class_table, to_markdown, write_report
from fer_ensemble.evaluation.report import _ensemble_label

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def searched_run(tiny_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(tiny_run, run)
    search_run(run, methods=("mean", "recall"))
    return run


def test_report_tables_figures_and_links(searched_run):
    rep = write_report(searched_run, gradcam_per_class=1)
    text = rep.path.read_text()
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert len(links) >= 12
    for link in links:
        target = searched_run / "report" / link
        assert target.exists(), link
        assert target.read_bytes()[:8] == PNG
        assert target.stat().st_size > 5000  # a real figure, not an empty canvas
    for part in ("confusion/ensemble.counts.png", "confusion/a_vgg.normalized.png", "roc/ensemble.png",
                 "curves/b_sep.png", "class_distribution.png", "predictions_grid.png", "gradcam/"):
        assert part in text
    manifest = json.loads((searched_run / "ensemble.json").read_text())
    summary = pd.read_csv(searched_run / "report" / "tables" / "summary_test.csv").set_index("model")
    assert summary.loc["ensemble", "accuracy"] == pytest.approx(100 * manifest["test_accuracy"], abs=1e-9)
    for name in ("a_vgg", "b_sep"):
        z = np.load(searched_run / f"{name}.preds.npz")
        assert summary.loc[name, "accuracy"] == pytest.approx(100 * (z["test_proba"].argmax(1) == z["test_y"]).mean())
        side = json.loads((searched_run / f"{name}.json").read_text())
        table = pd.read_csv(searched_run / "report" / "tables" / f"{name}.test.csv").set_index("class")
        for c, v in side["metrics"]["test"]["precision"].items():
            assert table.loc[c, "precision"] == pytest.approx(v)
    dist = pd.read_csv(searched_run / "report" / "tables" / "class_distribution.csv").set_index("class")
    assert dist["training, balanced batches"].nunique() == 1
    assert dist["training, oversampled (0.6)"].sum() > dist["training"].sum()
    assert not rep.notes


def test_caches_only_results_folder_is_reported_without_images(searched_run, tmp_path):
    """A committed results folder: no weights, training data not available -> the numeric
    sections are written and the image sections are skipped with a note."""
    for f in searched_run.iterdir():
        if f.suffix in (".json", ".npz", ".csv") and not f.name.startswith("."):
            shutil.copy(f, tmp_path / f.name)
    for side_file in tmp_path.glob("*_*.json"):
        side = json.loads(side_file.read_text())
        side["data_source"] = "/nowhere/fer2013.csv"
        side_file.write_text(json.dumps(side))
    rep = write_report(tmp_path)
    assert any("skipped" in n and "/nowhere/fer2013.csv" in n for n in rep.notes)
    text = rep.path.read_text()
    assert "predictions_grid.png" not in text and "confusion/ensemble.counts.png" in text
    assert (tmp_path / "report" / "roc" / "ensemble.png").exists()


def test_cli_report(searched_run):
    r = subprocess.run([sys.executable, "-m", "fer_ensemble", "report", str(searched_run), "--per-class", "1",
                        "--gradcam", "b_sep"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "ensemble" in r.stdout and "report.md" in r.stdout
    assert (searched_run / "report" / "gradcam" / "b_sep.png").exists()
    r = subprocess.run([sys.executable, "-m", "fer_ensemble", "report", str(searched_run), "--gradcam", "zz"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "--gradcam zz: no such model" in r.stderr


def test_per_class_table_and_markdown():
    y = np.array([0, 0, 1, 1, 2])
    proba = np.eye(3)[[0, 1, 1, 1, 0]]
    t = per_class_table(y, proba, ["a", "b", "c"]).set_index("class")
    assert t.loc["a", "accuracy"] == 0.5 and t.loc["b", "precision"] == pytest.approx(2 / 3)
    assert t.loc["c", "f1"] == 0 and t.loc["accuracy", "accuracy"] == pytest.approx(0.6)
    md = to_markdown(t.reset_index())
    assert md.splitlines()[1].startswith("| ---") and "| a | 0.5000 |" in md


def test_report_without_tensorflow_skips_grad_cam_with_a_note(searched_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(searched_run, run, ignore=shutil.ignore_patterns("report"))
    module = importlib.import_module("fer_ensemble.evaluation.gradcam")   # the package exports the function

    real = module.gradcam

    def gradcam_on_jax(*args, **kwargs):   # the member loads; only Grad-CAM finds no TensorFlow
        with monkeypatch.context() as m:
            m.setitem(sys.modules, "tensorflow", None)
            return real(*args, **kwargs)

    monkeypatch.setattr(module, "gradcam", gradcam_on_jax)
    rep = write_report(run, gradcam=("b_sep",), gradcam_per_class=1)
    assert (run / "report" / "confusion" / "ensemble.counts.png").exists()
    assert not (run / "report" / "gradcam" / "b_sep.png").exists()
    assert any(n.startswith("Grad-CAM for b_sep skipped") and "needs TensorFlow" in n for n in rep.notes), rep.notes


def test_report_diversity_section_pairs_and_disagreement(searched_run):
    rep = write_report(searched_run, gradcam_per_class=1)
    assert "![disagreement](diversity.png)" in rep.path.read_text()
    z = {n: np.load(searched_run / f"{n}.preds.npz") for n in ("a_vgg", "b_sep")}
    pairs = pd.read_csv(searched_run / "report" / "tables" / "pairs_test.csv")
    assert len(pairs) == 1 and {pairs.at[0, "model a"], pairs.at[0, "model b"]} == {"a_vgg", "b_sep"}
    y, mean = z["a_vgg"]["test_y"], (z["a_vgg"]["test_proba"] + z["b_sep"]["test_proba"]) / 2
    assert pairs.at[0, "pair test accuracy"] == pytest.approx(100 * (mean.argmax(1) == y).mean())
    vmean = (z["a_vgg"]["val_proba"] + z["b_sep"]["val_proba"]) / 2
    assert pairs.at[0, "pair val accuracy"] == pytest.approx(100 * (vmean.argmax(1) == z["a_vgg"]["val_y"]).mean())
    differ = z["a_vgg"]["test_proba"].argmax(1) != z["b_sep"]["test_proba"].argmax(1)
    assert pairs.at[0, "disagreement"] == pytest.approx(100 * differ.mean())
    manifest = json.loads((searched_run / "ensemble.json").read_text())
    matrix = pd.read_csv(searched_run / "report" / "tables" / "disagreement_test.csv").set_index("model")
    assert set(manifest["members"]) <= set(matrix.index) and list(matrix.index) == list(matrix.columns)


def test_report_folder_is_replaced_whole_and_kept_when_a_report_fails(searched_run, tmp_path):
    """A new report holds no figure left over from an earlier one; a failing report (an unknown
    --gradcam model) leaves the earlier report untouched and no staging folder behind."""
    run = tmp_path / "run"
    shutil.copytree(searched_run, run, ignore=shutil.ignore_patterns("report"))
    stale = run / "report" / "gradcam" / "gone_model.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PNG)
    rep = write_report(run, gradcam_per_class=1)
    assert not stale.exists() and rep.path == run / "report" / "report.md"
    assert rep.files and all(f.exists() and run / "report" in f.parents for f in rep.files)
    before = {p.relative_to(run): p.read_bytes() for p in (run / "report").rglob("*") if p.is_file()}
    with pytest.raises(FerEnsembleError, match="--gradcam zz: no such model"):
        write_report(run, gradcam=("zz",), gradcam_per_class=1)
    after = {p.relative_to(run): p.read_bytes() for p in (run / "report").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


def test_report_shows_how_the_ensemble_was_chosen(searched_run, tmp_path):
    """The search's leaderboard, then (after `search --cv-folds`) the out-of-fold comparison of the
    ways of choosing, with its CSV; an unreadable or stale search_cv.json gets a note, not a crash.
    Caches with enough validation faces per class for folds, beside the tiny run's sidecars."""
    from ..ensemble.test_combine_search import _problem

    names = ["a_vgg", "b_sep"]
    cls = json.loads((searched_run / "a_vgg.json").read_text())["class_names"]
    (vp, vy), (tp, ty) = _problem(2, 350, c=len(cls), seed=1), _problem(2, 300, c=len(cls), seed=2)
    for i, n in enumerate(names):
        side = json.loads((searched_run / f"{n}.json").read_text())
        (tmp_path / f"{n}.json").write_text(json.dumps({**side, "data_source": "/nowhere/fer2013.csv"}))
        np.savez(tmp_path / f"{n}.preds.npz", val_proba=vp[i], val_y=vy, test_proba=tp[i], test_y=ty,
                 class_names=np.array(cls))
    search_run(tmp_path, methods=("mean", "recall"))
    text = write_report(tmp_path).path.read_text()
    board = pd.read_csv(tmp_path / "search.csv")
    assert "## How the ensemble was chosen" in text and "Ways of choosing" not in text
    assert f"| {board.at[0, 'method']} | {board.at[0, 'size']} | {100 * board.at[0, 'val_accuracy']:.2f} |" in text
    assert not (tmp_path / "report" / "tables" / "search_cv.csv").exists()

    cv, _ = cv_run(tmp_path, folds=3, methods=("mean", "recall"))
    rep = write_report(tmp_path)
    text = rep.path.read_text()
    assert "### Ways of choosing, out of fold (3 folds" in text and f"**{cv['chosen']}**" in text
    table = pd.read_csv(tmp_path / "report" / "tables" / "search_cv.csv").set_index("procedure")
    assert list(table.index) == list(cv["procedures"])
    best = cv["procedures"]["best"]["out_of_fold_accuracy"]
    for p, r in cv["procedures"].items():
        assert table.at[p, "out-of-fold accuracy"] == pytest.approx(100 * r["out_of_fold_accuracy"])
        assert table.at[p, "vs best"] == pytest.approx(100 * (r["out_of_fold_accuracy"] - best))
        assert table.at[p, "test accuracy"] == pytest.approx(100 * r["test_accuracy"])
        assert table.at[p, "pick"] == f"{r['method']} of {len(r['members'])}"
        assert table.at[p, "folds"].count(" / ") == 2
    assert (table["chosen"] == "yes").sum() == 1 and table.at[cv["chosen"], "chosen"] == "yes"
    assert not [n for n in rep.notes if "search" in n]

    (tmp_path / "search_cv.json").write_text(json.dumps({**cv, "pool": 5}))
    rep = write_report(tmp_path)
    assert any("compared 5 models, the run now has 2" in n for n in rep.notes), rep.notes
    (tmp_path / "search_cv.json").write_text("{not json")
    rep = write_report(tmp_path)
    assert any(n.startswith(f"{tmp_path / 'search_cv.json'}: unreadable") for n in rep.notes), rep.notes
    text = rep.path.read_text()
    assert "Ways of choosing" not in text and "## How the ensemble was chosen" in text


@pytest.mark.parametrize("method, counts, shown, label", [
    ("accuracy", {"a_vgg": 3, "b_sep": 1}, "a_vgg ×3, b_sep", "accuracy-weighted mean of 2, 4 picks"),
    ("recall", {"a_vgg": 1, "b_sep": 2}, "a_vgg, b_sep ×2", "recall-weighted mean of 2, 3 picks"),
    ("recall", {"a_vgg": 1, "b_sep": 1}, "a_vgg, b_sep", "recall of 2"),     # no repeats: the method's name
    ("accuracy", None, "a_vgg, b_sep", "accuracy of 2"),                      # a file without "picks"
    ("mean", None, "a_vgg, b_sep", "weighted mean of 2")])                    # weights, counts not recorded
def test_report_header_reads_greedy_picks_from_ensemble_json(method, counts, shown, label):
    """The header names each member with how often greedy selection picked it, as the search
    recorded it ("picks"); nothing is made up for a file that does not say."""
    w = [2.0, 1.0] if method != "recall" else [[0.5] * 7, [0.25] * 7]
    manifest = {"members": ["a_vgg", "b_sep"], "method": method, "weights": dict(zip(["a_vgg", "b_sep"], w)),
                **({"picks": counts} if counts else {})}
    assert _ensemble_label(manifest, Path("run/ensemble.json")) == (f"ensemble ({label})", shown)


@pytest.mark.parametrize("picks", [{"a_vgg": 0, "b_sep": 1}, {"a_vgg": 1.5, "b_sep": 1}, {"a_vgg": 1}, [1, 2]])
def test_report_header_rejects_malformed_picks_naming_the_file(picks):
    manifest = {"members": ["a_vgg", "b_sep"], "method": "mean", "weights": None, "picks": picks}
    with pytest.raises(FerEnsembleError, match=r"run/ensemble.json: 'picks' must map each member"):
        _ensemble_label(manifest, Path("run/ensemble.json"))


@pytest.mark.parametrize("method", ["accuracy", "recall"])
def test_report_header_of_a_searched_greedy_pick(searched_run, tmp_path, method):
    """End to end: the search's greedy pick records its counts in ensemble.json; the report's
    header shows them, and its ensemble row scores that pick."""
    run = tmp_path / "run"
    shutil.copytree(searched_run, run, ignore=shutil.ignore_patterns("report"))
    result, _ = search_run(run, methods=(method,), exhaustive_limit=0)
    manifest = json.loads((run / "ensemble.json").read_text())
    counts = dict(zip(result.winner["members"].split("+"), map(int, result.winner["multiplicity"].split("+"))))
    assert manifest["picks"] == counts
    rep = write_report(run, gradcam_per_class=1)
    shown = ", ".join(n if k == 1 else f"{n} ×{k}" for n, k in counts.items())
    kind = (f"{method}-weighted mean of {len(counts)}, {sum(counts.values())} picks"
            if max(counts.values()) > 1 else f"{method} of {len(counts)}")
    assert f"Ensemble: ensemble ({kind}), members {shown}" in rep.path.read_text()
    acc = rep.summary.set_index("model").loc["ensemble", "accuracy"]
    assert acc == pytest.approx(100 * result.winner["test_accuracy"])


@pytest.mark.parametrize("method, weights, expect", [
    ("accuracy", {"a_vgg": [0.5] * 7, "b_sep": [0.5] * 7}, "weight of member 'a_vgg' for method 'accuracy' must be one number"),
    ("recall", {"a_vgg": 0.5, "b_sep": 0.5}, "weight of member 'a_vgg' for method 'recall' must be a list of 7"),
    ("recall", {"a_vgg": [0.5] * 6, "b_sep": [0.5] * 6}, "must be a list of 7 numbers"),
    ("mean", {"a_vgg": 1.0}, "'weights' must map every member to its weight; missing b_sep"),
    ("mean", {"a_vgg": -1.0, "b_sep": 1.0}, "finite and >= 0"),
    ("accuracy", None, "method 'accuracy' needs 'weights'")])
def test_report_names_ensemble_json_when_its_weights_are_malformed(searched_run, tmp_path, method, weights, expect):
    """A hand-edited ensemble.json whose weights do not fit its method once failed inside numpy."""
    run = tmp_path / "run"
    shutil.copytree(searched_run, run, ignore=shutil.ignore_patterns("report"))
    manifest = json.loads((run / "ensemble.json").read_text())
    manifest.update(members=["a_vgg", "b_sep"], method=method, weights=weights)
    manifest.pop("picks", None)
    (run / "ensemble.json").write_text(json.dumps(manifest))
    with pytest.raises(FerEnsembleError, match=re.escape(f"{run / 'ensemble.json'}: ") + ".*" + re.escape(expect)):
        write_report(run, gradcam_per_class=1)
    assert not (run / "report").exists()   # nothing half-written


def test_report_header_shows_greedy_picks_of_a_weighted_mean(searched_run, tmp_path):
    """A mean with weights (greedy selection's multiplicities) is named as such, each member with
    its count; the summary's ensemble row is that weighted mean."""
    run = tmp_path / "run"
    shutil.copytree(searched_run, run, ignore=shutil.ignore_patterns("report"))
    manifest = json.loads((run / "ensemble.json").read_text())
    manifest.update(members=["a_vgg", "b_sep"], method="mean", weights={"a_vgg": 3.0, "b_sep": 1.0},
                    picks={"a_vgg": 3, "b_sep": 1})
    (run / "ensemble.json").write_text(json.dumps(manifest))
    rep = write_report(run, gradcam_per_class=1)
    assert "Ensemble: ensemble (weighted mean of 2, 4 picks), members a_vgg ×3, b_sep" in rep.path.read_text()
    z = {n: np.load(run / f"{n}.preds.npz") for n in ("a_vgg", "b_sep")}
    mean = (3 * z["a_vgg"]["test_proba"] + z["b_sep"]["test_proba"]) / 4
    acc = 100 * (mean.argmax(1) == z["a_vgg"]["test_y"]).mean()
    assert rep.summary.set_index("model").loc["ensemble", "accuracy"] == pytest.approx(acc)
