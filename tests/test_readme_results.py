"""The FER2013 CPU-track numbers quoted in the README (and in ROUNDS.md) match the committed
artifacts in results/fer2013-cpu/ (sidecars, prediction caches, the report's summary, ensemble.json
and search_cv.json), so a table edited by hand or left behind by a new search fails here."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "fer2013-cpu"
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _tables(path: Path) -> list[list[list[str]]]:
    """Each Markdown table of `path` (runs of consecutive `| ` lines), as rows of cells."""
    tables, current = [], []
    for line in path.read_text().splitlines() + [""]:
        if line.startswith("| "):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def _rows(path: Path = ROOT / "README.md") -> list[list[str]]:
    """Every table row of `path`, tables one after another."""
    return [row for table in _tables(path) for row in table]


def _number(cell: str) -> float:
    return float(re.search(r"-?\d+(?:\.\d+)?", cell.replace("*", "")).group())


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    return pd.read_csv(RESULTS / "report" / "tables" / "summary_test.csv").set_index("model")


def _member_rows(kind: str) -> list[list[str]]:
    """Rows naming a committed member: the member table (9 cells, parameter count in M) or the
    per-class table (9 cells, numbers)."""
    # A member's name is one word; other first cells (ensembles) can exceed a file name's length.
    rows = [r for r in _rows()
            if len(r) == 9 and re.fullmatch(r"\w+", r[0]) and (RESULTS / f"{r[0]}.json").exists()]
    return [r for r in rows if r[1].endswith("M") == (kind == "members")]


def test_member_table_matches_sidecars_and_caches(summary):
    rows = _member_rows("members")
    assert len(rows) >= 40
    for r in rows:
        side = json.loads((RESULTS / f"{r[0]}.json").read_text())["metrics_without_tta"]
        z = np.load(RESULTS / f"{r[0]}.preds.npz")
        tta = 100 * float((z["test_proba"].argmax(1) == z["test_y"]).mean())
        want = [round(100 * side["val"]["accuracy"], 2), round(100 * side["test"]["accuracy"], 2), round(tta, 2)]
        assert [_number(c) for c in r[5:8]] == pytest.approx(want, abs=0.0051), r[0]
        assert _number(r[8]) == pytest.approx(summary.loc[r[0], "macro F1"], abs=0.051), r[0]


def test_per_class_table_matches_the_report(summary):
    rows = _member_rows("per-class")
    assert len(rows) >= 40
    for r in rows:
        got = [float(c) for c in r[1:9]]
        want = [*summary.loc[r[0], CLASSES], summary.loc[r[0], "accuracy"]]
        assert got[:7] == pytest.approx(want[:7], abs=0.051), r[0]
        assert got[7] == pytest.approx(want[7], abs=0.0051), r[0]


def test_searched_ensemble_and_goal_match_ensemble_json(summary):
    manifest = json.loads((RESULTS / "ensemble.json").read_text())
    acc = 100 * manifest["test_accuracy"]
    best = max(summary.drop(index="ensemble")["accuracy"])
    row = next(r for r in _rows() if r[0].startswith("**searched ensemble**"))
    assert " + ".join(sorted(manifest["members"])) in row[0]
    assert _number(row[7]) == pytest.approx(acc, abs=0.0051)
    assert f"+{acc - best:.2f} over the best member" in row[7]
    per_class = next(r for r in _rows() if r[0].startswith("ensemble ("))
    assert [float(c) for c in per_class[1:8]] == pytest.approx(list(summary.loc["ensemble", CLASSES]), abs=0.051)
    goal = (ROOT / "README.md").read_text().split("The goal (")[1][:400]
    assert f"**{acc:.2f}%**" in goal and f"**+{acc - best:.2f} points over**" in goal


def test_out_of_fold_table_matches_search_cv_json():
    """ROUNDS.md's latest out-of-fold table (round 35's rule, run again by each later round): each
    procedure's out-of-fold accuracy, its gain over `best`, its five folds, its whole-split accuracy
    and its PrivateTest accuracy, as search_cv.json holds them; ensemble.json is the chosen one's."""
    cv = json.loads((RESULTS / "search_cv.json").read_text())
    procs = cv["procedures"]
    tables = [t for t in _tables(RESULTS / "ROUNDS.md") if {r[0] for r in t if len(r) == 7} >= set(procs)]
    assert tables, "no out-of-fold table in ROUNDS.md"
    rows = {r[0]: r for r in tables[-1] if len(r) == 7 and r[0] in procs}
    assert set(rows) == set(procs)
    best = procs["best"]["out_of_fold_accuracy"]
    for name, r in rows.items():
        p = procs[name]
        assert _number(r[1]) == pytest.approx(100 * p["out_of_fold_accuracy"], abs=0.0051), name
        assert _number(r[2]) == pytest.approx(100 * (p["out_of_fold_accuracy"] - best), abs=0.0051), name
        folds = [float(x) for x in r[3].split(" / ")]
        assert folds == pytest.approx([100 * a for a in p["fold_accuracy"]], abs=0.0051), name
        assert _number(r[4]) == pytest.approx(100 * p["val_accuracy"], abs=0.0051), name
        assert _number(r[6]) == pytest.approx(100 * p["test_accuracy"], abs=0.0051), name
        assert r[1].startswith("**") == (name == cv["chosen"]), name   # the chosen row, and only it, in bold
    assert json.loads((RESULTS / "ensemble.json").read_text())["procedure"] == cv["chosen"]


def test_budget_table_matches_the_budget_runs(summary):
    """README's "What a budget buys" rows: each sub-run's member count, the rule's PrivateTest
    accuracy (ensemble.json), its best member there (from the main run's report) and the margin."""
    rows = [r for r in _rows() if len(r) == 6 and re.match(r"(\d+ h|~79 h)", r[0])]
    runs = sorted((RESULTS.parent / "fer2013-cpu-budget").glob("*s/budget.json"),
                  key=lambda p: json.loads(p.read_text())["budget_s"])
    assert len(rows) == len(runs) + 1 and len(runs) == 4
    for r, path in zip(rows, runs):
        budget = json.loads(path.read_text())
        manifest = json.loads((path.parent / "ensemble.json").read_text())
        names = [m["name"] for m in budget["members"]]
        best = max(summary.loc[names, "accuracy"])
        assert int(r[0].split()[0]) * 3600 == budget["budget_s"], r[0]
        assert re.match(rf"{len(names)}\b", r[1]), r[0]
        assert _number(r[3]) == pytest.approx(100 * manifest["test_accuracy"], abs=0.0051), r[0]
        assert _number(r[4]) == pytest.approx(best, abs=0.0051), r[0]
        assert _number(r[5]) == pytest.approx(100 * manifest["test_accuracy"] - best, abs=0.0051), r[0]


def test_budget_oracle_table_matches_its_output_and_the_2_hour_scan_reproduces():
    """README's "Any subset, chosen on the test split" rows as oracle_test.json holds them; the 2-hour
    budget's scan (0.1 s) is rerun on the committed caches and must give the committed answer."""
    oracle = load_script("budget_oracle", "research/scripts")
    saved = json.loads((RESULTS.parent / "fer2013-cpu-budget" / "oracle_test.json").read_text())["budgets"]
    rows = [r for r in _rows() if len(r) == 5 and re.match(r"[\d,]+ s \(\d h\)$", r[0])]
    assert [int(r[0].split()[0].replace(",", "")) for r in rows] == [b["budget_s"] for b in saved] == [
        7200, 10800, 14400]
    for r, b in zip(rows, saved):
        assert (int(r[1].replace(",", "")), int(r[2])) == (b["subsets"], b["meeting_goal"]), r[0]
        for cell, key in ((r[3], "best_margin_at_min_accuracy"), (r[4], "best_accuracy_at_min_margin")):
            acc, margin = (float(x) for x in re.findall(r"[-+]?\d+\.\d+", cell))
            assert (acc, margin) == pytest.approx((100 * b[key]["ensemble_accuracy"], 100 * b[key]["margin"]),
                                                  abs=0.0051), r[0]
    text = " ".join((ROOT / "README.md").read_text().split())
    weighted = [json.loads((RESULTS.parent / "fer2013-cpu-budget" / f"oracle_test_{m}.json").read_text())["budgets"]
                for m in ("accuracy", "recall")]
    assert all(b[0]["meeting_goal"] == b[1]["meeting_goal"] == 0 for b in weighted)   # "no 2- or 3-hour subset"
    margins = " and ".join(f"{100 * b[0]['best_margin_at_min_accuracy']['margin']:+.2f}" for b in weighted)
    assert f"highest 2-hour margins at >= 70%: {margins})" in text
    assert f"and {weighted[0][2]['meeting_goal']} and {weighted[1][2]['meeting_goal']} of the 4-hour ones do" in text
    from fer_ensemble.ensemble.budget import run_metas
    from fer_ensemble.ensemble.run_search import load_caches

    caches = load_caches(RESULTS)
    again = oracle.oracle(caches, run_metas(RESULTS, caches["names"]), 7200)
    assert again == {k: v for k, v in saved[0].items() if k != "scan_s"}


def _assert_row_matches_sidecar(row: list[str], meta: dict, private: bool) -> None:
    """A member row `name | epochs | wall (s) | PublicTest [| PrivateTest]` as its sidecar holds it."""
    assert int(row[1]) == meta["epochs_run"], row[0]
    assert _number(row[2].replace(",", "")) == pytest.approx(meta["wall_time_s"], abs=0.51), row[0]
    assert _number(row[3]) == pytest.approx(100 * meta["metrics"]["val"]["accuracy"], abs=0.0051), row[0]
    if private:
        assert _number(row[4]) == pytest.approx(100 * meta["metrics"]["test"]["accuracy"], abs=0.0051), row[0]


def test_two_hour_zoo_table_matches_its_run():
    """README's 2-hour zoo table: each member's epochs, wall time, PublicTest and PrivateTest (flip
    TTA) as its sidecar holds them; the rule's pick as ensemble.json holds it, with its margin over
    the zoo's own best member; and the members' summed cost within the 2 hours."""
    from fer_ensemble.ensemble.budget import member_cost

    run = RESULTS.parent / "fer2013-cpu2h"
    metas = {p.stem: json.loads(p.read_text()) for p in run.glob("r2h_*.json")}
    assert metas and sum(member_cost(m) for m in metas.values()) <= 7200
    rows = [r for r in _rows() if r and r[0] in metas]
    assert sorted(r[0] for r in rows) == sorted(metas)
    for r in rows:
        _assert_row_matches_sidecar(r, metas[r[0]], private=True)
    manifest = json.loads((run / "ensemble.json").read_text())
    best = max(100 * m["metrics"]["test"]["accuracy"] for m in metas.values())
    pick = next(r for r in _rows() if r[0].startswith("**rule's pick"))
    assert _number(pick[3]) == pytest.approx(100 * manifest["val_accuracy"], abs=0.0051)
    assert _number(pick[4]) == pytest.approx(100 * manifest["test_accuracy"], abs=0.0051)
    assert f"{100 * manifest['test_accuracy'] - best:+.2f} over the best member" in pick[4]


def test_strided_stem_probe_table_and_means_match_its_run():
    """README's stem-stride probe: each member's epochs, wall time and PublicTest as its sidecar holds
    them, and the PublicTest means quoted against the better member (probe and r2h chains)."""
    probe, chains = RESULTS.parent / "fer2013-cpu2h-probe", RESULTS.parent / "fer2013-cpu2h"
    metas = {p.stem: json.loads(p.read_text()) for p in probe.glob("p_*.json")}
    rows = [r for r in _rows() if r and r[0].split(" ")[0] in metas]
    assert sorted(r[0].split(" ")[0] for r in rows) == sorted(metas) and len(metas) == 2
    for r in rows:
        m = metas[r[0].split(" ")[0]]
        assert m["spec"]["args"]["stem_stride"] == 2 and m["tta"] == "flip"
        _assert_row_matches_sidecar(r, m, private=False)
    text = (ROOT / "README.md").read_text()

    def mean_and_gain(run, names):
        caches = [np.load(run / f"{n}.preds.npz") for n in names]
        y = caches[0]["val_y"]
        accs = [100 * (c["val_proba"].argmax(1) == y).mean() for c in caches]
        mean = 100 * (sum(c["val_proba"] for c in caches).argmax(1) == y).mean()
        return mean, mean - max(accs)

    mean, gain = mean_and_gain(probe, sorted(metas))
    assert f"Their mean reaches {mean:.2f}% ({gain:+.2f} over the better)" in text
    mean, gain = mean_and_gain(chains, ["r2h_a", "r2h_b", "r2h_c"])
    assert f"the three r2h chains' mean: {mean:.2f}%, {gain:+.2f}" in text
