"""One CSV row per trained member and per searched ensemble of a committed results folder.

    python scripts/results_summary.py results/fer2013-cpu                 # -> results/fer2013-cpu.csv
    python scripts/results_summary.py results/fer2013-gpu --out gpu.csv
    make results-summary                                                  # every track

RESULTS_DIR is a run directory (what `fer-ensemble collect` writes) or a folder of them (a track
such as results/fer2013-gpu/ with fer6/, fer7/, ...); every folder below it that holds member
sidecars (NAME.json) or an ensemble.json is summarised, the `run` column naming it relative to
RESULTS_DIR ("." for RESULTS_DIR itself). Members come first within a run, by name, then the run's
ensemble. Numbers are read from the sidecars and ensemble.json only (no weights, no data):
accuracies are percentages on PublicTest (the validation split that chose every ensemble) and
PrivateTest (the test split), with the member's test-time augmentation (`tta`) where it has one;
`privatetest_acc_no_tta` is the same member without it. The CSV is written under a temporary name
and renamed, so an interrupted run never leaves half a table.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path

COLUMNS = ["run", "kind", "name", "builder", "params", "epochs", "best_epoch", "train_time_s",
           "wall_time_s", "tta", "init_from", "publictest_acc", "privatetest_acc",
           "privatetest_acc_no_tta", "privatetest_macro_f1", "method", "procedure", "members"]
NOT_SIDECARS = {"ensemble.json", "budget.json", "search_cv.json", "members.json"}


def _pct(x) -> str:
    return "" if x is None else f"{100 * float(x):.2f}"


def _blank(x) -> str:
    return "" if x is None else str(x)


def member_row(run: str, meta: dict) -> dict:
    """A member's row from its sidecar (NAME.json)."""
    metrics, plain = meta.get("metrics", {}), meta.get("metrics_without_tta") or meta.get("metrics", {})
    test = metrics.get("test") or {}
    source = meta.get("initialized_from") or {}
    return {
        "run": run, "kind": "member", "name": meta["name"], "builder": meta.get("builder", ""),
        "params": _blank(meta.get("parameters")), "epochs": _blank(meta.get("epochs_run")),
        "best_epoch": _blank(meta.get("best_epoch")),
        "train_time_s": _blank(meta.get("train_time_s")), "wall_time_s": _blank(meta.get("wall_time_s")),
        "tta": meta.get("tta") or "", "init_from": source.get("name", "") if isinstance(source, dict) else str(source),
        "publictest_acc": _pct((metrics.get("val") or {}).get("accuracy")),
        "privatetest_acc": _pct(test.get("accuracy")),
        "privatetest_acc_no_tta": _pct((plain.get("test") or {}).get("accuracy")),
        "privatetest_macro_f1": _pct(((test.get("macro") or {}).get("f1"))),
        "method": "", "procedure": "", "members": "",
    }


def ensemble_row(run: str, manifest: dict) -> dict:
    """A searched ensemble's row from its ensemble.json."""
    row = dict.fromkeys(COLUMNS, "")
    row.update(run=run, kind="ensemble", name="ensemble", method=manifest.get("method", ""),
               procedure=manifest.get("procedure", ""), members="+".join(manifest["members"]),
               publictest_acc=_pct(manifest.get("val_accuracy")),
               privatetest_acc=_pct(manifest.get("test_accuracy")))
    return row


def _sidecar(path: Path) -> dict | None:
    """The member sidecar at `path`, or None for any other JSON file."""
    if path.name in NOT_SIDECARS:
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and "spec" in meta and "metrics" in meta and "name" in meta else None


def summarise(results_dir: Path) -> list[dict]:
    """Rows for every run folder at or below `results_dir` (sorted by folder, then by name)."""
    rows = []
    folders = [results_dir] + sorted(p for p in results_dir.rglob("*") if p.is_dir())
    for folder in folders:
        run = folder.relative_to(results_dir).as_posix() or "."
        metas = [m for m in (_sidecar(p) for p in sorted(folder.glob("*.json"))) if m is not None]
        rows += [member_row(run, m) for m in sorted(metas, key=lambda m: m["name"])]
        if (folder / "ensemble.json").exists():
            rows.append(ensemble_row(run, json.loads((folder / "ensemble.json").read_text())))
    return rows


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results_dir", type=Path, help="a results folder (a run, or a track of runs)")
    ap.add_argument("--out", type=Path, help="the CSV to write (default: RESULTS_DIR.csv beside the folder)")
    args = ap.parse_args(argv)
    results_dir = args.results_dir
    if not results_dir.is_dir():
        print(f"results_summary: {results_dir} is not a folder", file=sys.stderr)
        return 1
    rows = summarise(results_dir)
    if not rows:
        print(f"results_summary: no member sidecars or ensemble.json under {results_dir}", file=sys.stderr)
        return 1
    out = args.out or results_dir.parent / f"{results_dir.resolve().name}.csv"
    write_atomically(out, to_csv(rows))
    members = sum(r["kind"] == "member" for r in rows)
    print(f"{out}: {members} member(s), {len(rows) - members} ensemble(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
