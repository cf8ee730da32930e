"""FER2013 loaders: csv (plain, gzip), image folders, npz cache, bad input, real-data counts."""
from __future__ import annotations

import gzip
import warnings

import numpy as np
import pytest
from PIL import Image

from fer_ensemble.data import FER6_CLASSES, FER7_CLASSES, load_fer2013, save_cache
from fer_ensemble.errors import DataError
from tests.conftest import write_csv

RNG = np.random.default_rng(0)
IMGS = RNG.integers(0, 256, size=(6, 48, 48), dtype=np.uint8)
ROWS = [(0, IMGS[0], "Training"), (1, IMGS[1], "Training"), (3, IMGS[2], "Training"),
        (6, IMGS[3], "PublicTest"), (5, IMGS[4], "PrivateTest"), (2, IMGS[5], "PrivateTest")]


def test_csv_roundtrip_and_splits(tmp_path):
    d = load_fer2013(write_csv(tmp_path / "f.csv", ROWS))
    assert d.class_names == FER7_CLASSES
    assert (len(d.train), len(d.val), len(d.test)) == (3, 1, 2)
    np.testing.assert_array_equal(d.train.x, IMGS[:3])
    np.testing.assert_array_equal(d.test.y, [5, 2])
    assert d.train.x.dtype == np.uint8 and d.train.y.dtype == np.int64


def test_csv_gz_crlf_and_quotes(tmp_path):
    text = "emotion,pixels,Usage\r\n" + "".join(
        f'{lab},"{" ".join(map(str, im.ravel()))}",{u}\r\n' for lab, im, u in ROWS)
    p = tmp_path / "f.csv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write(text)
    d = load_fer2013(p)
    np.testing.assert_array_equal(d.val.x[0], IMGS[3])


def test_fer6_merges_disgust(tmp_path):
    d = load_fer2013(write_csv(tmp_path / "f.csv", ROWS), classes="fer6")
    assert d.class_names == FER6_CLASSES
    np.testing.assert_array_equal(d.train.y, [0, 0, 2])  # angry, disgust->angry, happy->2


@pytest.mark.parametrize("rows,header,message", [
    ([(0, "1 2 3", "Training")], "emotion,pixels,Usage", "line 2: 3 pixel values, expected 2304"),
    ([(0, IMGS[0], "Training"), (0, "x " * 2304, "Training")], "emotion,pixels,Usage", "line 3: non-numeric"),
    ([(9, IMGS[0], "Training")], "emotion,pixels,Usage", "line 2: emotion 9 outside the class range"),
    ([(0, IMGS[0], "Validation")], "emotion,pixels,Usage", "line 2: unknown Usage 'Validation'"),
    ([(0, IMGS[0], "Training")], "emotion,image,Usage", "missing column(s) pixels"),
    ([], "emotion,pixels,Usage", "no data rows"),
    ([(0, "256 " + "1 " * 2303, "Training")], "emotion,pixels,Usage", "line 2: pixel value '256' outside 0-255"),
    ([("a", IMGS[0], "Training")], "emotion,pixels,Usage", "line 2: emotion 'a' is not an integer"),
])
def test_csv_bad_input_names_file_and_line(tmp_path, rows, header, message):
    p = write_csv(tmp_path / "bad.csv", rows, header=header)
    with pytest.raises(DataError) as e:
        load_fer2013(p)
    assert "bad.csv" in str(e.value) and message in str(e.value)


def test_error_in_later_chunk_names_the_right_line(tmp_path):
    rows = [(0, IMGS[i % 6], "Training") for i in range(5000)]
    rows[4321] = (0, "7 " * 2300, "Training")
    with pytest.raises(DataError, match=r"line 4323: 2300 pixel values"):
        load_fer2013(write_csv(tmp_path / "big.csv", rows))


def _save(path, arr, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).convert(mode).save(path)


def test_image_folder_kaggle_layout(tmp_path):
    _save(tmp_path / "train/angry/Training_1.png", IMGS[0])
    _save(tmp_path / "train/happy/Training_2.png", IMGS[1])
    _save(tmp_path / "test/sad/PublicTest_3.png", IMGS[2])
    _save(tmp_path / "test/neutral/PrivateTest_4.png", IMGS[3])
    big = np.kron(IMGS[4], np.ones((2, 2), np.uint8))  # 96x96 RGB: converted with a warning
    _save(tmp_path / "test/fear/PrivateTest_5.png", big, mode="RGB")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        d = load_fer2013(tmp_path)
    assert any("1 image(s)" in str(x.message) for x in w)
    assert (len(d.train), len(d.val), len(d.test)) == (2, 1, 2)
    np.testing.assert_array_equal(d.val.x[0], IMGS[2])
    assert sorted(d.test.y.tolist()) == [2, 6]
    assert d.test.x.shape == (2, 48, 48)


def test_image_folder_train_val_test(tmp_path):
    for split, cls, i in [("train", "surprise", 0), ("val", "disgust", 1), ("test", "3", 2)]:
        _save(tmp_path / f"{split}/{cls}/img{i}.jpg", IMGS[i])
    d = load_fer2013(tmp_path)
    assert (d.train.y.tolist(), d.val.y.tolist(), d.test.y.tolist()) == ([5], [1], [3])


@pytest.mark.parametrize("make,message", [
    (lambda r: (r / "train/joyful").mkdir(parents=True), "unknown class folder 'joyful'"),
    (lambda r: ((r / "train/happy").mkdir(parents=True), (r / "train/happy/a.jpg").write_text("nope")),
     "a.jpg: not a readable image"),
    (lambda r: (r / "train/happy").mkdir(parents=True), "no images found"),
    (lambda r: (r / "other").mkdir(), "no train/ folder"),
])
def test_image_folder_bad_input(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(DataError, match=message):
        load_fer2013(tmp_path)


def test_cache_roundtrip(tmp_path):
    d = load_fer2013(write_csv(tmp_path / "f.csv", ROWS))
    save_cache(d, tmp_path / "c.npz")
    d2 = load_fer2013(tmp_path / "c.npz")
    assert d2.fingerprint() == d.fingerprint()
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_unknown_source(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_fer2013(tmp_path / "missing.csv")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="unsupported source"):
        load_fer2013(tmp_path / "x.txt")


CANONICAL = {"train": [3995, 436, 4097, 7215, 4830, 3171, 4965],
             "val": [467, 56, 496, 895, 653, 415, 607],
             "test": [491, 55, 528, 879, 594, 416, 626]}


@pytest.mark.realdata
def test_real_csv_counts(shared_data, tmp_path):
    """Rebuild the official csv from the shared arrays and check the canonical counts."""
    z = np.load(shared_data / "fer2013.npz")
    with gzip.open(tmp_path / "fer2013.csv.gz", "wt", compresslevel=1) as fh:
        fh.write("emotion,pixels,Usage\n")
        for lab, im, u in zip(z["labels"], z["images"].reshape(len(z["labels"]), -1), z["usage"]):
            fh.write(f"{lab},{' '.join(map(str, im.tolist()))},{u}\n")
    d = load_fer2013(tmp_path / "fer2013.csv.gz")
    assert (len(d.train), len(d.val), len(d.test)) == (28709, 3589, 3589)
    assert d.counts() == CANONICAL
    np.testing.assert_array_equal(d.test.x, z["images"][z["usage"] == "PrivateTest"])
    assert d.fingerprint() == load_fer2013(shared_data / "fer2013.npz").fingerprint()


def test_a_csv_with_only_training_rows_is_summarised_and_refused_for_training(tmp_path, capsys):
    """`data` reports the empty splits; `train` stops with the missing Usage values named."""
    from fer_ensemble.cli import main
    from tests.conftest import TINY_ZOO

    csv = write_csv(tmp_path / "train_only.csv", ROWS[:3])
    assert main(["data", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "cleaning:" in out
    zoo = tmp_path / "tiny.toml"
    zoo.write_text(TINY_ZOO)
    assert main(["train", "a_vgg", "--zoo", str(zoo), "--data", str(csv), "--run", str(tmp_path / "run")]) == 2
    assert f"error: {csv}: no PublicTest, PrivateTest images; training needs" in capsys.readouterr().err
    assert not list((tmp_path / "run").glob("*.json"))


def test_a_truncated_npz_cache_is_named_as_truncated(tmp_path):
    d = load_fer2013(write_csv(tmp_path / "f.csv", ROWS))
    cache = save_cache(d, tmp_path / "c.npz")
    data = cache.read_bytes()
    for cut in (len(data) // 2, 100):
        cache.write_bytes(data[:cut])
        with pytest.raises(DataError, match=f"{cache}: cannot read .npz, truncated or corrupt"):
            load_fer2013(cache)


@pytest.mark.parametrize("source, message", [
    ("synthetic:abc", "synthetic:abc: N in synthetic:N must be a whole number of images, at least 30"),
    ("synthetic:5", "synthetic:5: N in synthetic:N must be a whole number of images, at least 30"),
    ("synthetic:-40", "synthetic:-40: N in synthetic:N must be"),
])
def test_a_bad_synthetic_size_is_named(source, message):
    from fer_ensemble.data import load_data

    with pytest.raises(DataError, match=message):
        load_data(source)


def test_a_truncated_jpg_is_called_truncated(tmp_path):
    folder = tmp_path / "train" / "happy"
    folder.mkdir(parents=True)
    Image.fromarray(RNG.integers(0, 256, (48, 48), dtype=np.uint8)).save(folder / "a.jpg", quality=95)
    whole = (folder / "a.jpg").read_bytes()
    (folder / "a.jpg").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DataError, match=r"a\.jpg: not a readable image \(OSError: image file is truncated"):
        load_fer2013(tmp_path)
