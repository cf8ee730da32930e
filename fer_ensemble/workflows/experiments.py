"""The studies' experiments as small config files (`experiments/*.toml`) and one runner.

An experiment file is a zoo file (the variants to compare, as [[model]] entries) plus an
[experiment] table: name, kind, description, data (default data source). Kinds:
  compare   train every variant; one row per variant (accuracy, macro precision/recall/F1)
  ensemble  train the zoo; per method, the ensemble of all models vs the subset the search picks
  labels    train the same variants on the data's labels and on FER+ majority labels
Each run writes RUN/results.csv and RUN/results.md and returns the table.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .._io import read_toml, write_text
from ..data import FerData, load_data, load_ferplus, simulate_ferplus
from ..ensemble import combine, fit_weights, load_caches, search_subsets
from ..ensemble.methods import DEFAULT_METHODS
from ..errors import FerEnsembleError
from ..models import Zoo, zoo_from_dict
from ..evaluation.tables import to_markdown
from ..training import train_all

KINDS = ("compare", "ensemble", "labels")


@dataclass(frozen=True)
class Experiment:
    name: str
    kind: str
    description: str
    data: str
    zoo: Zoo
    path: str


def load_experiment(path: str | os.PathLike) -> Experiment:
    path = Path(path)
    raw = read_toml(path, "experiment file", FerEnsembleError)
    meta = raw.pop("experiment", None)
    if not isinstance(meta, dict):
        raise FerEnsembleError(f"{path}: missing [experiment] table (name, kind, description, data)")
    bad = sorted(set(meta) - {"name", "kind", "description", "data"})
    if bad:
        raise FerEnsembleError(f"{path}: [experiment] has unknown key(s) {', '.join(bad)}")
    kind = meta.get("kind", "compare")
    if kind not in KINDS:
        raise FerEnsembleError(f"{path}: [experiment] kind must be one of {KINDS}, got {kind!r}")
    zoo = zoo_from_dict(raw, str(path))
    return Experiment(meta.get("name", path.stem), kind, meta.get("description", ""),
                      meta.get("data", "synthetic:3000"), zoo, str(path))


def _model_rows(run, progress_result, data: FerData, label: str | None = None) -> list[dict]:
    rows = []
    for r in progress_result.results:
        m = r.sidecar["metrics"]
        spec = r.sidecar["spec"]
        rows.append({**({"labels": label} if label else {}), "model": r.name, "builder": r.sidecar["builder"],
                     "balancing": spec["balancing"], "augment": _augment_text(spec["augment"]),
                     "params": r.sidecar["parameters"], "epochs": r.sidecar["epochs_run"],
                     "train images": len(data.train), "val accuracy": m["val"]["accuracy"],
                     "test accuracy": m["test"]["accuracy"], "test macro precision": m["test"]["macro"]["precision"],
                     "test macro recall": m["test"]["macro"]["recall"], "test macro F1": m["test"]["macro"]["f1"]})
    for name, err in progress_result.failures.items():
        rows.append({**({"labels": label} if label else {}), "model": name, "error": err})
    return rows


def _augment_text(a) -> str:
    if a is True:
        return "default"
    if not a:
        return "none"
    return ", ".join(f"{k}={v}" for k, v in a.items() if v)


def _ensemble_rows(run: Path) -> list[dict]:
    c = load_caches(run)
    vp, tp, vy, ty, names = c["val_proba"], c["test_proba"], c["val_y"], c["test_y"], c["names"]
    rows = []
    for method in DEFAULT_METHODS:
        w = fit_weights(method, vp, vy)
        rows.append({"method": method, "ensemble": f"all {len(names)}", "members": "+".join(names),
                     "val accuracy": float((combine(vp, method, w).argmax(1) == vy).mean()),
                     "test accuracy": float((combine(tp, method, w).argmax(1) == ty).mean())})
        best = search_subsets(names, vp, vy, tp, ty, methods=(method,)).best[method]
        rows.append({"method": method, "ensemble": f"searched {best['size']}", "members": best["members"],
                     "val accuracy": best["val_accuracy"], "test accuracy": best["test_accuracy"]})
    single = max(range(len(names)), key=lambda i: (vp[i].argmax(1) == vy).mean())
    rows.append({"method": "single", "ensemble": "best by val", "members": names[single],
                 "val accuracy": float((vp[single].argmax(1) == vy).mean()),
                 "test accuracy": float((tp[single].argmax(1) == ty).mean())})
    return rows


def run_experiment(exp: Experiment, data: str | None = None, run_dir: str | os.PathLike | None = None,
                   ferplus: str | None = None, epochs: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Train what the experiment needs (resumable, cached per run directory) and write its table."""
    source = data or exp.data
    run = Path(run_dir or Path("runs") / "experiments" / exp.name)
    overrides = {"epochs": epochs} if epochs else None
    if exp.kind == "labels" and not ferplus and not source.startswith("synthetic"):
        raise FerEnsembleError(f"{exp.path}: the labels experiment on {source} needs --ferplus fer2013new.csv")
    fer = load_data(source, classes=exp.zoo.classes)
    if exp.kind == "compare":
        result = train_all(exp.zoo, fer, run, overrides=overrides, progress=progress)
        table = pd.DataFrame(_model_rows(run, result, fer))
    elif exp.kind == "ensemble":
        result = train_all(exp.zoo, fer, run, overrides=overrides, progress=progress)
        if result.failures:
            raise FerEnsembleError(f"{exp.path}: models failed: {result.failures}")
        table = pd.DataFrame(_ensemble_rows(run))
    else:
        if ferplus:
            relabelled = load_ferplus(source, ferplus, mode="majority")
        else:
            relabelled = simulate_ferplus(fer)
        rows = []
        for label, d in (("original", fer), ("FER+ majority", relabelled)):
            result = train_all(exp.zoo, d, run / label.split()[0].lower().replace("+", "plus"), overrides=overrides,
                               progress=progress)
            rows += _model_rows(run, result, d, label)
        table = pd.DataFrame(rows)
    table = table.convert_dtypes()  # counts stay integers when a failed row leaves gaps
    run.mkdir(parents=True, exist_ok=True)
    write_text(run / "results.csv", table.to_csv(index=False))
    header = [f"# Experiment {exp.name} ({exp.kind})", "", exp.description, "", f"data: {source}", ""]
    write_text(run / "results.md", "\n".join(header + [to_markdown(table.astype(object).where(table.notna(), ""), 4), ""]))
    return table
