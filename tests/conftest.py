"""Shared test fixtures: tiny synthetic data, the real-data folder (skipped when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fer2013.npz").exists():
        pytest.skip(f"real FER2013 not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_data():
    from fer_ensemble.data import make_synthetic

    return make_synthetic(600, seed=1)


def write_csv(path: Path, rows: list[tuple], header: str = "emotion,pixels,Usage") -> Path:
    """Write a fer2013-style csv; rows are (label, pixels array or string, usage)."""
    lines = [header]
    for label, pixels, usage in rows:
        if not isinstance(pixels, str):
            pixels = " ".join(str(int(v)) for v in np.asarray(pixels).ravel())
        lines.append(f"{label},{pixels},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path
