"""ensemble.json's fields read back with checks: weights per method, greedy selection's picks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fer_ensemble.ensemble.manifest import manifest_picks, manifest_weights, picks_record, read_manifest
from fer_ensemble.errors import EnsembleError

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.mark.parametrize("method, weights", [("mean", [3, 1.0]), ("accuracy", [0.61, 0.58]),
                                             ("recall", [[0.5] * 7, [0.25, 0, 1, 1, 1, 1, 1]])])
def test_weights_come_back_in_member_order(method, weights):
    """What the search writes (JSON numbers, ints included) reads back as the array it stored."""
    members = ["b", "a"]
    doc = json.loads(json.dumps({"members": members, "method": method, "class_names": CLASSES,
                                 "weights": dict(zip(members, weights))}))
    np.testing.assert_array_equal(manifest_weights(doc), np.array(weights, dtype=np.float64))


@pytest.mark.parametrize("method", ["vote", "geometric", "stacking"])
def test_methods_without_weights_ignore_them(method):
    assert manifest_weights({"members": ["a"], "method": method, "weights": {"a": "anything"}}) is None


@pytest.mark.parametrize("weights, expect", [({"a": 0, "b": 0}, "every weight is 0"),
                                             ({"a": float("nan"), "b": 1}, "finite"),
                                             ({"a": True, "b": 1}, "one number"),
                                             ("1,1", "missing a, b")])
def test_bad_weights_name_the_file(weights, expect):
    with pytest.raises(EnsembleError, match=r"^runs/x/ensemble.json: .*" + expect):
        manifest_weights({"members": ["a", "b"], "method": "mean", "weights": weights}, "runs/x/ensemble.json")


def test_picks_round_trip_and_absent_picks():
    doc = json.loads(json.dumps({"members": ["b", "a"], **picks_record(["b", "a"], np.array([2, 1]))}))
    assert manifest_picks(doc) == {"b": 2, "a": 1} and list(manifest_picks(doc)) == ["b", "a"]
    assert picks_record(["a"], None) == {} and manifest_picks({"members": ["a"]}) is None


@pytest.mark.parametrize("text, expect", [("{not json", "cannot read JSON"), ('{"members": [], "method": "mean"}',
                                           "'members' must be a non-empty list"), ('{"members": ["a"]}', "'method' is missing")])
def test_read_manifest_names_the_file(tmp_path, text, expect):
    (tmp_path / "ensemble.json").write_text(text)
    with pytest.raises(EnsembleError, match=f"^{tmp_path / 'ensemble.json'}: {expect}"):
        read_manifest(tmp_path / "ensemble.json")
    (tmp_path / "ensemble.json").write_text('{"members": ["a"], "method": "mean"}')
    assert read_manifest(tmp_path / "ensemble.json") == {"members": ["a"], "method": "mean"}
