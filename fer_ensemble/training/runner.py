"""Train a whole zoo into one run directory, one member after another: skip finished models,
isolate failures, summarise. The run directory is locked for the whole zoo (one writer at a time).
Several members at once (train-all --jobs, --ray) run on Ray: `ray_executor`."""
from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..data import FerData
from ..errors import FerEnsembleError, ModelError, WriteError
from ..models import Zoo
from ..rundir import check_name, lock_run
from .trainer import TrainResult, train_model


@dataclass
class ZooRun:
    results: list[TrainResult]
    failures: dict[str, str]

    def table(self) -> str:
        rows = [("model", "params", "epochs", "best val", "test", "time", "")]
        for r in self.results:
            s = r.sidecar
            seconds = s.get("train_time_s") or s["wall_time_s"]  # all legs of a resumed run when known
            rows.append((r.name, f"{s['parameters'] / 1e6:.2f}M", str(s["epochs_run"]),
                         f"{r.val_accuracy:.4f}", f"{r.test_accuracy:.4f}", f"{seconds:.0f}s",
                         "(cached)" if r.skipped else ""))
        for name, err in self.failures.items():
            rows.append((name, "-", "-", "-", "-", "-", f"FAILED: {err.splitlines()[0][:70]}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def train_all(zoo: Zoo, data: FerData, run_dir: str | os.PathLike, *, only: list[str] | None = None,
              overrides: dict | None = None, force: bool = False, progress: bool = True,
              **train_kwargs) -> ZooRun:
    """Train every model of `zoo` (or those named in `only`) into `run_dir`; extra keyword
    arguments (jit_compile, tensorboard) go to train_model. A failed member is reported and the
    others still train; a file that cannot be written (disk full) stops the zoo."""
    run_dir = Path(run_dir)
    specs = zoo_specs(zoo, only)
    data.check_splits()
    with lock_run(run_dir, "train-all", create=True):
        return _train_specs(zoo, specs, data, run_dir, overrides, force, progress, train_kwargs)


def zoo_specs(zoo: Zoo, only: list[str] | None = None) -> list:
    """The specs to train (all, or those named in `only`), after checking every name can name files."""
    specs = [zoo.get(n) for n in only] if only else list(zoo.models)
    for spec in specs:
        check_name(spec.name, f"{zoo.path or zoo.name}: model {spec.name!r}", ModelError)
    return specs


def _train_specs(zoo: Zoo, specs: list, data: FerData, run_dir: Path, overrides: dict | None, force: bool,
                 progress: bool, train_kwargs: dict) -> ZooRun:
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
        except WriteError:   # the disk is full: every member after this one would fail the same way
            raise
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


def sources_first(specs: list) -> list:
    """Specs ordered so that every init_from source comes before the members that use it."""
    names = {s.name for s in specs}
    ordered, placed = [], set()
    pending = list(specs)
    while pending:
        ready = [s for s in pending if s.init_from not in names or s.init_from in placed]
        if not ready:  # a cycle; the zoo validator forbids these, keep the order
            ready = pending[:1]
        for s in ready:
            ordered.append(s)
            placed.add(s.name)
            pending.remove(s)
    return ordered
