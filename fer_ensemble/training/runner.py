"""Train a whole zoo into one run directory: skip finished models, isolate failures, summarise.
The run directory is locked for the whole zoo (one writer at a time)."""
from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..data import FerData
from ..errors import FerEnsembleError, ModelError, WriteError
from ..models import Zoo
from ..rundir import artifact_paths, check_name, lock_run, read_sidecar
from ..runlock import child_env
from .trainer import TrainResult, finished_schedule, train_model


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


def train_parallel(zoo: Zoo, run_dir: str | os.PathLike, child_args: list[str], *, jobs: int,
                   only: list[str] | None = None, progress: bool = True) -> ZooRun:
    """Train the members of `zoo` in `jobs` processes at once (`fer-ensemble train NAME` each,
    with `child_args` after the name), so small models share one GPU instead of leaving most of
    it idle. A member with `init_from` starts when its source has finished. Each member logs to
    RUN/logs/NAME.log; results are read back from the sidecars, failures are isolated.

    GPU memory: each process may take only its share (JAX and TensorFlow would otherwise claim
    most of the card in the first process); an exported setting wins.
    """
    run_dir = Path(run_dir)
    specs = zoo_specs(zoo, only)
    with lock_run(run_dir, f"train-all --jobs {jobs}", create=True) as lock:
        failures = _run_processes(zoo, specs, run_dir, child_args, jobs, progress, child_env(lock))
    results = []
    for spec in specs:
        paths = artifact_paths(run_dir, spec.name)
        sidecar = read_sidecar(paths["json"]) if paths["json"].exists() else None
        if spec.name in failures:
            continue
        if sidecar is not None and finished_schedule(sidecar, paths["history.csv"]) is not None:
            results.append(TrainResult(spec.name, sidecar))
        else:
            failures[spec.name] = "finished without a sidecar that says it finished its schedule"
    return ZooRun(results, failures)


def _run_processes(zoo: Zoo, specs: list, run_dir: Path, child_args: list[str], jobs: int, progress: bool,
                   lock_env: dict[str, str]) -> dict[str, str]:
    """Run `fer-ensemble train NAME` for every spec, `jobs` at a time, under the parent's lock
    (`lock_env`); returns the failures by name."""
    import subprocess
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import subprocess
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **lock_env}
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{min(0.75, 0.9 / jobs):.3f}")
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    done = {s.name: threading.Event() for s in specs}
    failures: dict[str, str] = {}
    lock = threading.Lock()
    t0 = time.perf_counter()

    def one(spec) -> None:
        try:
            if spec.init_from in done:
                done[spec.init_from].wait()
                if spec.init_from in failures:
                    failures[spec.name] = f"its init_from {spec.init_from!r} failed"
                    return
            cmd = [sys.executable, "-m", "fer_ensemble", "train", spec.name, *child_args]
            with open(logs / f"{spec.name}.log", "a") as log:
                rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
            if rc != 0:
                failures[spec.name] = f"exit status {rc}; see {logs / (spec.name + '.log')}"
            if progress:
                with lock:
                    status = "failed" if spec.name in failures else "done"
                    print(f"[zoo {zoo.name}] {spec.name} {status} at {time.perf_counter() - t0:.0f}s", flush=True)
        finally:
            done[spec.name].set()

    # Sources are submitted before the members that start from them, so a waiting member never
    # holds a slot its source still needs to start.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for f in [pool.submit(one, s) for s in _sources_first(specs)]:
            f.result()
    return failures


def _sources_first(specs: list) -> list:
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
