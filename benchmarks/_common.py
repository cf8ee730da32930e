"""Shared benchmark helpers: repeated timing with medians, the real-data location, JSON output."""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def timeit(fn, repeat: int = 3) -> dict:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median_s": round(statistics.median(times), 4), "runs_s": [round(t, 4) for t in times]}


def median_time(fn, n: int) -> float:
    """Median wall time of `n` calls of fn, in seconds."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def emit(name: str, results: dict) -> None:
    print(json.dumps({"benchmark": name, "machine": f"{platform.machine()} x{os.cpu_count()}",
                      **results}, indent=2))
