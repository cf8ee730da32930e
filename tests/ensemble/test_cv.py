"""Out-of-fold measure of the ways of choosing an ensemble (`search --cv-folds`, `--select cv`)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fer_ensemble.ensemble import (PROCEDURES, choose_procedure, cross_validate, cv_run, fit_procedure,
                                   load_caches, manifest_proba, search_run)
from fer_ensemble.errors import EnsembleError

from .test_combine_search import _problem, _write_caches


def test_out_of_fold_is_scored_only_on_faces_not_chosen_on():
    """Members of pure noise: searching every subset finds one that looks good on the faces it was
    chosen on, but out of fold it is at chance. Scored on its own faces, the measure would show
    the same optimism."""
    rng = np.random.default_rng(3)
    y = np.tile(np.arange(7), 100)                        # 700 faces, 100 per class
    p = rng.dirichlet(np.ones(7), size=(12, y.size))      # 12 members that know nothing
    names = [f"m{i:02d}" for i in range(12)]
    cv = cross_validate(names, p, y, procedures=("search", "best"), folds=5, seed=0, methods=("mean",))
    for proc, luck in (("search", 0.04), ("best", 0.01)):   # 4,095 subsets are luckier than 12 members
        fit = fit_procedure(proc, names, p, y, methods=("mean",)).fit_accuracy
        oof = cv["procedures"][proc]["out_of_fold_accuracy"]
        assert abs(oof - 1 / 7) < 0.04, (proc, oof)       # chance, within ~3 standard errors
        assert fit - oof > luck, (proc, fit, oof)          # the choice's own luck, removed
    assert cv["procedures"]["search"]["fold_accuracy"] != cv["procedures"]["best"]["fold_accuracy"]


def test_folds_partition_the_split_and_refit_on_each():
    """Each fold's pick is fit without that fold: re-running the procedure on the complement and
    scoring the fold reproduces every fold accuracy, and the pooled count is their weighted mean."""
    from sklearn.model_selection import StratifiedKFold

    vp, vy = _problem(6, 350, seed=5)
    names = [f"m{i}" for i in range(6)]
    cv = cross_validate(names, vp, vy, procedures=("greedy", "all"), folds=5, seed=7, top_members=4)
    folds = [held for _, held in StratifiedKFold(5, shuffle=True, random_state=7).split(vp[0], vy)]
    assert sorted(np.concatenate(folds)) == list(range(350))
    for proc in ("greedy", "all"):
        r = cv["procedures"][proc]
        right = 0
        for k, held in enumerate(folds):
            fit = np.setdiff1d(np.arange(350), held)
            pick = fit_procedure(proc, names, vp[:, fit], vy[fit], top_members=4)
            ok = pick.proba(vp[:, held]).argmax(1) == vy[held]
            assert r["fold_accuracy"][k] == pytest.approx(ok.mean())
            assert r["fold_picks"][k]["members"] == "+".join(names[i] for i in pick.members)
            assert len(pick.members) == 4 if proc == "all" else len(pick.members) <= 4   # the cut, per fold
            right += ok.sum()
        assert r["out_of_fold_accuracy"] == pytest.approx(right / 350)


def test_choose_procedure_takes_the_best_and_breaks_ties_in_listed_order():
    cv = {"procedures": {p: {"out_of_fold_accuracy": a} for p, a in
                         zip(PROCEDURES, (0.70, 0.72, 0.72, 0.71, 0.69))}}
    assert choose_procedure(cv) == "greedy"                       # greedy and all tie: greedy is listed first
    cv["procedures"]["stacking"]["out_of_fold_accuracy"] = 0.73
    assert choose_procedure(cv) == "stacking"
    del cv["procedures"]["stacking"], cv["procedures"]["greedy"]
    assert choose_procedure(cv) == "all"


def test_select_cv_writes_the_chosen_pick_and_the_cli_checks_its_input(tmp_path, capsys):
    from fer_ensemble.cli import main

    vp, vy = _problem(7, 400, seed=21)
    tp, ty = _problem(7, 400, seed=22)
    names = [f"m{i}" for i in range(7)]
    _write_caches(tmp_path, vp, vy, tp, ty, names)
    assert main(["search", str(tmp_path), "--top-members", "5", "--cv-folds", "4", "--select", "cv"]) == 0
    out = capsys.readouterr().out
    assert "out-of-fold" in out and "chosen by out-of-fold accuracy" in out
    cv = json.loads((tmp_path / "search_cv.json").read_text())
    assert set(cv["procedures"]) == set(PROCEDURES) and cv["folds"] == 4 and cv["pool"] == 7
    again = fit_procedure("search", names, vp, vy, top_members=5)   # the CLI reuses the search's own choice
    assert cv["procedures"]["search"]["members"] == [names[i] for i in again.members]
    assert cv["procedures"]["search"]["val_accuracy"] == pytest.approx(again.fit_accuracy)
    manifest = json.loads((tmp_path / "ensemble.json").read_text())
    chosen = cv["procedures"][cv["chosen"]]
    assert manifest["procedure"] == cv["chosen"] and manifest["members"] == chosen["members"]
    assert ("evaluated" in manifest) == (cv["chosen"] == "search")   # the search's own record is kept
    assert manifest["out_of_fold_accuracy"] == chosen["out_of_fold_accuracy"]
    caches = load_caches(tmp_path)   # the stored ensemble reproduces the reported accuracies
    assert (manifest_proba(manifest, caches).argmax(1) == ty).mean() == pytest.approx(manifest["test_accuracy"])
    assert (manifest_proba(manifest, caches, "val").argmax(1) == vy).mean() == pytest.approx(chosen["val_accuracy"])
    for p, r in cv["procedures"].items():   # every procedure's whole-split pick, test never used to choose
        assert 0 <= r["test_accuracy"] <= 1 and r["val_accuracy"] >= r["out_of_fold_accuracy"] - 0.1

    search_run(tmp_path, top_members=5)          # cv choosing the search keeps the search's record ...
    cv_run(tmp_path, folds=4, select=True, procedures=("search",), top_members=5)
    kept = json.loads((tmp_path / "ensemble.json").read_text())
    assert kept["procedure"] == "search" and kept["evaluated"] and kept["min_size"] == 1
    cv_run(tmp_path, folds=4, select=True, procedures=("all",))   # ... another pick replaces it
    other = json.loads((tmp_path / "ensemble.json").read_text())
    assert other["procedure"] == "all" and other["members"] == names and "evaluated" not in other

    # Stacking alone (the search crashed on it before): nothing to search, the rest is compared.
    assert main(["search", str(tmp_path), "--methods", "stacking", "--cv-folds", "3"]) == 0
    assert set(json.loads((tmp_path / "search_cv.json").read_text())["procedures"]) == {"all", "stacking", "best"}
    assert json.loads((tmp_path / "ensemble.json").read_text())["method"] == "stacking"
    assert main(["search", str(tmp_path), "--select", "cv"]) == 2
    assert "--select cv needs --cv-folds" in capsys.readouterr().err
    assert main(["search", str(tmp_path), "--cv-folds", "1"]) == 2
    assert f"{tmp_path}: cv folds must be >= 2" in capsys.readouterr().err
    assert main(["search", str(tmp_path), "--cv-folds", "500"]) == 2
    assert "smallest class" in capsys.readouterr().err
    with pytest.raises(EnsembleError, match="unknown procedure"):
        cv_run(tmp_path, procedures=("search", "median"))


def test_greedy_pick_keeps_its_multiplicities_in_ensemble_json(tmp_path):
    """Greedy selection repeats members; ensemble.json once kept only the names, so the stored
    ensemble was not the one whose accuracy it reported."""
    vp, vy = _problem(8, 600, seed=2)
    tp, ty = _problem(8, 600, seed=3)
    names = [f"m{i}" for i in range(8)]
    _write_caches(tmp_path, vp, vy, tp, ty, names)
    caches = load_caches(tmp_path)
    for method in ("mean", "accuracy", "recall"):
        result, text = search_run(tmp_path, methods=(method,), exhaustive_limit=0)
        counts = [int(c) for c in result.winner["multiplicity"].split("+")]
        assert max(counts) > 1, method                       # the problem makes greedy repeat
        manifest = json.loads((tmp_path / "ensemble.json").read_text())
        assert manifest["picks"] == dict(zip(result.winner["members"].split("+"), counts)), method
        acc = (manifest_proba(manifest, caches).argmax(1) == ty).mean()
        assert acc == pytest.approx(result.winner["test_accuracy"]), method
        # the leaderboard's per-class row scores the same ensemble (it too dropped the repeats)
        row = next(line for line in text.splitlines() if line.startswith(f"ens_{method}{len(counts)} "))
        assert float(row.split()[-1]) == pytest.approx(100 * acc, abs=0.005), method


def test_cv_selected_greedy_pick_records_its_counts(tmp_path):
    """--select cv writes the chosen procedure's pick; a greedy one says how often it picked each
    member ("picks"), which the report's header shows; other picks carry no counts."""
    vp, vy = _problem(8, 600, seed=2)
    tp, ty = _problem(8, 600, seed=3)
    names = [f"m{i}" for i in range(8)]
    _write_caches(tmp_path, vp, vy, tp, ty, names)
    cv, _ = cv_run(tmp_path, folds=3, select=True, procedures=("greedy",), methods=("accuracy",))
    manifest = json.loads((tmp_path / "ensemble.json").read_text())
    assert manifest["procedure"] == "greedy" and max(manifest["picks"].values()) > 1
    assert list(manifest["picks"]) == manifest["members"]
    pick = fit_procedure("greedy", names, vp, vy, methods=("accuracy",))
    assert manifest["picks"] == {names[i]: k for i, k in zip(pick.members, pick.counts)}
    cv_run(tmp_path, folds=3, select=True, procedures=("all",))
    assert "picks" not in json.loads((tmp_path / "ensemble.json").read_text())
