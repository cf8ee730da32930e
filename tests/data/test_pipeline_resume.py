"""Resuming: both training pipelines started at epoch k continue the uninterrupted order."""
from __future__ import annotations

import numpy as np
import pytest

from fer_ensemble.data.pipeline import train_batches, train_dataset

from .test_pipeline_arrays import _coded


def _indices(stream, count: int) -> list[list[int]]:
    return [np.rint(np.asarray(b[0])[:, 0, 0, 0] * 255).astype(int).tolist() for _, b in zip(range(count), stream)]


@pytest.mark.parametrize("pipeline", ["arrays", "tf"])
@pytest.mark.parametrize("balancing", ["none", "batches"])
def test_a_resumed_stream_continues_where_the_uninterrupted_one_was(pipeline: str, balancing: str):
    x, y = _coded(96)
    make = train_batches if pipeline == "arrays" else train_dataset
    fresh, steps = make(x, y, 3, batch_size=24, seed=7, balancing=balancing)
    resumed, _ = make(x, y, 3, batch_size=24, seed=7, balancing=balancing, initial_epoch=2)
    uninterrupted = _indices(fresh, 4 * steps)
    # epochs 2-3 of the uninterrupted run, not a replay of epochs 0-1
    assert _indices(resumed, 2 * steps) == uninterrupted[2 * steps:]
    assert uninterrupted[2 * steps:] != uninterrupted[:2 * steps]
