"""FER+ relabels: majority and distribution modes, row alignment with FER2013."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fer_ensemble.data import FERPLUS_CLASSES, load_ferplus
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
