"""The demo: the whole pipeline on built-in synthetic faces (train a zoo, search its ensemble,
load it and predict, write the report), printing each step's result."""
from __future__ import annotations

import os
import time
from typing import Callable

from ..data import make_synthetic
from ..ensemble import SEARCHABLE, Ensemble, search_run
from ..evaluation import write_report
from ..models import load_zoo
from ..training import train_all


def run_demo(run_dir: str | os.PathLike = "runs/demo", n: int = 3000, zoo: str = "models_zoo/quick.toml",
             log: Callable[..., None] = print) -> dict:
    """Train `zoo` on `n` synthetic faces into `run_dir`, search every searchable method, evaluate
    the chosen ensemble on the test split and write the report; returns its test evaluation."""
    t = time.perf_counter()
    data = make_synthetic(n, seed=0)
    log(data.summary(), flush=True)
    result = train_all(load_zoo(zoo), data, run_dir)
    log(result.table(), flush=True)
    _, text = search_run(run_dir, methods=SEARCHABLE)
    log(text)
    ens = Ensemble.load(run_dir)
    ev = ens.evaluate(data.test.x, data.test.y)
    log(f"\nEnsemble.load({str(run_dir)!r}).evaluate(test): accuracy {ev['accuracy']:.4f} "
        f"({ens.method} over {len(ens.members)} members)")
    log("first test images:", ens.predict_labels(data.test.x[:5]), "true:",
        [data.class_names[i] for i in data.test.y[:5]])
    rep = write_report(run_dir, data=data, gradcam_per_class=2)
    log(f"report: {rep.path} ({len(rep.files)} files: tables, confusion matrices, ROC, curves, Grad-CAM)")
    log(f"demo finished in {time.perf_counter() - t:.0f}s")
    return ev
