"""FER+ relabels: majority and distribution modes, row alignment with FER2013, and the Training
votes blended into FER2013 targets (ferplus_targets)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fer_ensemble.data import (FERPLUS_CLASSES, attach_ferplus_votes, blend_targets, ferplus_train_votes,
                               load_data, load_ferplus)
from fer_ensemble.data.ferplus import VOTE_COLUMNS
from fer_ensemble.errors import DataError


def _fake(tmp_path, votes, usage):
    n = len(votes)
    images = np.arange(n, dtype=np.uint8)[:, None, None] * np.ones((1, 48, 48), np.uint8)
    np.savez(tmp_path / "fer.npz", images=images, labels=np.zeros(n, np.int8), usage=np.array(usage))
    df = pd.DataFrame(votes, columns=VOTE_COLUMNS)
    df.insert(0, "Image name", [f"fer{i:07d}.png" for i in range(n)])
    df.insert(0, "Usage", usage)
    df.to_csv(tmp_path / "new.csv", index=False)
    return tmp_path / "fer.npz", tmp_path / "new.csv"


VOTES = [
    [8, 2, 0, 0, 0, 0, 0, 0, 0, 0],   # neutral
    [0, 0, 0, 0, 5, 5, 0, 0, 0, 0],   # tie -> dropped in majority
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face -> dropped
    [1, 0, 0, 0, 0, 0, 0, 0, 9, 0],   # unknown -> dropped
    [0, 0, 0, 0, 0, 0, 3, 7, 0, 0],   # contempt
    [0, 6, 4, 0, 0, 0, 0, 0, 0, 0],   # happiness
]
USAGE = ["Training", "Training", "Training", "PublicTest", "PrivateTest", "PrivateTest"]


def test_majority(tmp_path):
    d = load_ferplus(*_fake(tmp_path, VOTES, USAGE))
    assert d.class_names == FERPLUS_CLASSES
    assert d.train.y.tolist() == [0] and d.train.x[0, 0, 0] == 0
    assert len(d.val) == 0
    assert d.test.y.tolist() == [7, 1] and d.test.x[:, 0, 0].tolist() == [4, 5]


def test_distribution(tmp_path):
    d = load_ferplus(*_fake(tmp_path, VOTES, USAGE), mode="distribution")
    assert len(d.train) == 2  # the tie stays: it has an emotion on top
    np.testing.assert_allclose(d.train.soft.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(d.test.soft[1][:3], [0, 0.6, 0.4], atol=1e-6)


def test_row_mismatch(tmp_path):
    fer, new = _fake(tmp_path, VOTES, USAGE)
    pd.read_csv(new).iloc[:4].to_csv(new, index=False)
    with pytest.raises(DataError, match="4 rows but the FER2013 source has 6"):
        load_ferplus(fer, new)


# Training rows only; columns are VOTE_COLUMNS (neutral, happiness, surprise, sadness, anger,
# disgust, fear, contempt, unknown, NF).
TRAIN_VOTES = [
    [8, 2, 0, 0, 0, 0, 0, 0, 0, 0],   # neutral 0.8, happy 0.2
    [0, 0, 0, 0, 5, 5, 0, 0, 0, 0],   # anger 0.5, disgust 0.5 (fer6: all angry)
    [0, 0, 0, 0, 0, 0, 3, 7, 0, 0],   # contempt has no FER2013 class: fear 1.0
    [0, 0, 0, 0, 0, 0, 0, 0, 2, 8],   # no emotion vote: zeros
    [0, 0, 0, 9, 0, 0, 0, 0, 0, 0],   # PublicTest: never returned
]
TRAIN_USAGE = ["Training"] * 4 + ["PublicTest"]


def test_train_votes_map_to_fer2013_classes(tmp_path):
    fer, new = _fake(tmp_path, TRAIN_VOTES, TRAIN_USAGE)
    v = ferplus_train_votes(fer, new)
    assert v.shape == (4, 7) and v.dtype == np.float32
    np.testing.assert_allclose(v, [[0, 0, 0, 0.2, 0, 0, 0.8], [0.5, 0.5, 0, 0, 0, 0, 0],
                                   [0, 0, 1, 0, 0, 0, 0], [0] * 7], atol=1e-6)
    v6 = ferplus_train_votes(fer, new, classes="fer6")
    np.testing.assert_allclose(v6[1], [1, 0, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(v6[0], [0, 0, 0.2, 0, 0, 0.8], atol=1e-6)


def test_blend_targets_keeps_the_label_on_top():
    votes = np.array([[0, 0, 0, 0.2, 0, 0, 0.8], [0] * 7, [0, 0, 0, 0, 0, 0, 1]], np.float32)
    y = np.array([3, 5, 2])
    t = blend_targets(y, votes, 0.5)
    np.testing.assert_allclose(t[0], [0, 0, 0, 0.6, 0, 0, 0.4], atol=1e-6)
    np.testing.assert_allclose(t[1], np.eye(7)[5])          # no votes: one-hot
    np.testing.assert_allclose(t[2], [0, 0, 0.5, 0, 0, 0, 0.5])  # votes all elsewhere: a tie at most
    np.testing.assert_allclose(blend_targets(y, votes, 0.0), np.eye(7)[y])
    rng = np.random.default_rng(0)
    many = rng.dirichlet(np.ones(7), 500).astype(np.float32)
    labels = rng.integers(0, 7, 500)
    t = blend_targets(labels, many, 0.4)
    np.testing.assert_allclose(t.sum(axis=1), 1.0, atol=1e-5)
    assert (t.argmax(axis=1) == labels).all()
    with pytest.raises(ValueError, match="weight"):
        blend_targets(y, votes, 1.5)
    with pytest.raises(ValueError, match="shape"):
        blend_targets(y[:2], votes, 0.5)
    with pytest.raises(ValueError, match="shape"):
        blend_targets(y, votes[:, 0], 0.5)   # 1-D votes: a clear error, not an IndexError


def test_attach_keeps_images_labels_and_fingerprint(tmp_path):
    fer, new = _fake(tmp_path, TRAIN_VOTES, TRAIN_USAGE)
    data = load_data(str(fer))
    attached = attach_ferplus_votes(data, fer, new)
    assert attached.fingerprint() == data.fingerprint() and attached.train.soft is None
    assert attached.info["ferplus_votes"].shape == (4, 7) and attached.info["ferplus_csv"] == str(new)
    assert "ferplus_votes" not in data.info   # the input is not modified
    fer6 = attach_ferplus_votes(load_data(str(fer), classes="fer6"), fer, new)
    assert fer6.info["ferplus_votes"].shape == (4, 6)
    with pytest.raises(DataError, match="FER2013's classes"):
        attach_ferplus_votes(load_ferplus(fer, new), fer, new)
    (tmp_path / "short").mkdir()
    other, _ = _fake(tmp_path / "short", TRAIN_VOTES[:2] + [TRAIN_VOTES[4]], TRAIN_USAGE[:2] + ["PublicTest"])
    with pytest.raises(DataError, match="5 rows but the FER2013 source has 3"):
        attach_ferplus_votes(load_data(str(other)), other, new)


@pytest.mark.realdata
def test_real_ferplus_alignment(shared_data):
    d = load_ferplus(shared_data / "fer2013.npz", shared_data / "ferplus" / "fer2013new.csv")
    z = np.load(shared_data / "fer2013.npz")
    votes = pd.read_csv(shared_data / "ferplus" / "fer2013new.csv")
    rows = d.info["row_index"]["train"]
    # Row alignment: the kept images are exactly the FER2013 rows named by row_index ...
    np.testing.assert_array_equal(d.train.x[:50], z["images"][rows[:50]])
    # ... and their labels are those rows' top votes.
    top = votes.loc[rows[:200], list(FERPLUS_CLASSES)].to_numpy().argmax(axis=1)
    np.testing.assert_array_equal(d.train.y[:200], top)
    # FER+ excludes every row without an image name (173 of them: all not-a-face).
    unnamed = set(np.flatnonzero(votes["Image name"].isna()).tolist())
    assert not unnamed & set(rows)
    assert 25000 < len(d.train) < 28709 and 3000 < len(d.test) < 3589
    # Most FER+ labels agree with FER2013 on the shared emotions (happy -> happiness).
    happy = z["labels"][rows] == 3
    assert (d.train.y[happy] == 1).mean() > 0.85


@pytest.mark.realdata
def test_real_train_votes(shared_data):
    v = ferplus_train_votes(shared_data / "fer2013.npz", shared_data / "ferplus" / "fer2013new.csv")
    y = np.load(shared_data / "fer2013.npz")["labels"][np.load(shared_data / "fer2013.npz")["usage"] == "Training"]
    assert v.shape == (28709, 7)
    has = v.sum(axis=1) > 0
    np.testing.assert_allclose(v[has].sum(axis=1), 1.0, atol=1e-5)
    assert 100 < (~has).sum() < 300            # rows whose votes are all unknown / not a face
    # the crowd's top vote agrees with FER2013's label on most, but far from all, Training images
    assert 0.55 < (v[has].argmax(axis=1) == y[has]).mean() < 0.8
