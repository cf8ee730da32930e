"""Wall time of training the quick zoo (models_zoo/quick.toml, five small members) on synthetic
faces three ways, side by side in one run: sequential `train-all`, `train-all --ray local` (one
Ray task per member, a local Ray instance with one slot per core) and `train-all --jobs 2` (a local
Ray instance with 2 slots; before --jobs ran on Ray, two `fer-ensemble train` processes at a time:
docs/ray.md has both). Each is a fresh `fer-ensemble` process into an empty
run directory, so start-up (TensorFlow import, Ray's start, loading the data) counts. Also checks
that the three give the same validation accuracies.

    python benchmarks/bench_ray.py [--quick] [--repeat N]

--quick trains 3 epochs per member instead of the zoo's 10. Needs the ray package
(pip install 'fer_ensemble[ray]'); without it the benchmark says so and exits 0.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "models_zoo" / "quick.toml"
DATA = "synthetic:3000"
WAYS = {"sequential": [], "ray_local": ["--ray", "local"], "jobs_2": ["--jobs", "2"]}


def _train(way: str, extra: list[str], run: Path, epochs: list[str]) -> float:
    cmd = [sys.executable, "-m", "fer_ensemble", "train-all", "--zoo", str(ZOO), "--data", DATA, "--run", str(run),
           *epochs, *extra]
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "RAY_USAGE_STATS_ENABLED": "0"})
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{way} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return wall


def _val_accuracies(run: Path) -> dict[str, float]:
    return {p.stem: json.loads(p.read_text())["metrics"]["val"]["accuracy"]
            for p in sorted(run.glob("*.json")) if not p.name.startswith(".")}


def main() -> None:
    try:
        import ray
    except ImportError:
        print("bench_ray: skipped, the ray package is not installed (pip install 'fer_ensemble[ray]')")
        return
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
    epochs = ["--epochs", "3"] if "--quick" in sys.argv else []
    times: dict[str, list[float]] = {w: [] for w in WAYS}
    accuracy: dict[str, dict[str, float]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_ray_") as tmp:
        for i in range(repeat):   # interleaved: a change in the machine's load hits every way alike
            for way, extra in WAYS.items():
                run = Path(tmp) / f"{way}{i}"
                times[way].append(round(_train(way, extra, run, epochs), 1))
                accuracy[way] = _val_accuracies(run)
    seq = accuracy["sequential"]
    emit("ray", {
        "zoo": str(ZOO.relative_to(ROOT)), "data": DATA, "members": len(seq),
        "epochs": "3 (--quick)" if epochs else "the zoo's (10, early stopping)",
        "cores": os.cpu_count(), "ray": ray.__version__, "load_average_before": round(load_before, 2),
        "wall_s": {w: {"median": round(statistics.median(t), 1), "runs": t} for w, t in times.items()},
        "vs_sequential": {w: round(statistics.median(times["sequential"]) / statistics.median(t), 2)
                          for w, t in times.items()},
        "max_val_accuracy_difference": {w: max(abs(a[n] - seq[n]) for n in seq) for w, a in accuracy.items()},
    })


if __name__ == "__main__":
    main()
