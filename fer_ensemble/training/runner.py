"""Train a whole zoo into one run directory: skip finished models, isolate failures, summarise."""
from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..data import FerData
from ..errors import FerEnsembleError
from ..models import Zoo
from .trainer import TrainResult, train_model


@dataclass
class ZooRun:
    results: list[TrainResult]
    failures: dict[str, str]

    def table(self) -> str:
        rows = [("model", "params", "epochs", "best val", "test", "time", "")]
        for r in self.results:
            s = r.sidecar
            rows.append((r.name, f"{s['parameters'] / 1e6:.2f}M", str(s["epochs_run"]),
                         f"{r.val_accuracy:.4f}", f"{r.test_accuracy:.4f}", f"{s['wall_time_s']:.0f}s",
                         "(cached)" if r.skipped else ""))
        for name, err in self.failures.items():
            rows.append((name, "-", "-", "-", "-", "-", f"FAILED: {err.splitlines()[0][:70]}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def train_all(zoo: Zoo, data: FerData, run_dir: str | os.PathLike, *, only: list[str] | None = None,
              overrides: dict | None = None, force: bool = False, progress: bool = True,
              **train_kwargs) -> ZooRun:
    """Train every model of `zoo` (or those named in `only`) into `run_dir`; extra keyword
    arguments (jit_compile, tensorboard) go to train_model."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    specs = [zoo.get(n) for n in only] if only else list(zoo.models)
    results, failures = [], {}
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), desc=f"zoo {zoo.name}", unit="model")
    for spec in specs:
        if overrides:
            spec = spec.replace(**overrides)
        try:
            results.append(train_model(spec, data, run_dir, force=force, progress=progress, **train_kwargs))
        except FerEnsembleError as e:
            failures[spec.name] = str(e)
            print(f"[{spec.name}] failed: {e}", file=sys.stderr, flush=True)
        except Exception as e:  # isolate: one broken member must not stop the zoo
            failures[spec.name] = f"{e.__class__.__name__}: {e}"
            print(f"[{spec.name}] failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        if bar is not None:
            bar.update(1)
        elif progress:
            done = results[-1] if results and results[-1].name == spec.name else None
            status = f"val {done.val_accuracy:.4f}" + (" (cached)" if done.skipped else "") if done else "failed"
            print(f"[zoo {zoo.name}] {len(results) + len(failures)}/{len(specs)} {spec.name}: {status}", flush=True)
    if bar is not None:
        bar.close()
    return ZooRun(results, failures)
