"""Data layer speed: full fer2013.csv parse (ours vs pandas + per-row str.split), .npz cache reload,
make_synthetic(10_000). Needs ../shared/data for the csv part (rebuilt into a temp dir)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from _common import SHARED, emit, timeit
from fer_ensemble.data import load_fer2013, make_synthetic, save_cache


def naive_parse(path):
    import pandas as pd

    df = pd.read_csv(path)
    x = np.stack([np.array(s.split(), dtype=np.uint8).reshape(48, 48) for s in df["pixels"]])
    return x, df["emotion"].to_numpy(), df["Usage"].to_numpy()


def main():
    out = {"make_synthetic_10000": timeit(lambda: make_synthetic(10_000), repeat=3)}
    if (SHARED / "fer2013.npz").exists():
        z = np.load(SHARED / "fer2013.npz")
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "fer2013.csv"
            with open(csv, "w") as fh:
                fh.write("emotion,pixels,Usage\n")
                for lab, im, u in zip(z["labels"], z["images"].reshape(len(z["labels"]), -1), z["usage"]):
                    fh.write(f"{lab},{' '.join(map(str, im.tolist()))},{u}\n")
            ours = timeit(lambda: load_fer2013(csv), repeat=3)
            naive = timeit(lambda: naive_parse(csv), repeat=1)
            data = load_fer2013(csv)
            xs, _, _ = naive_parse(csv)
            assert np.array_equal(np.concatenate([data.train.x, data.val.x, data.test.x]).shape, xs.shape)
            cache = Path(tmp) / "cache.npz"
            save_cache(data, cache)
            out["csv_parse_35887_rows"] = {"ours": ours, "naive_pandas_split": naive,
                                           "speedup": round(naive["median_s"] / ours["median_s"], 1)}
            out["npz_cache_reload"] = timeit(lambda: load_fer2013(cache), repeat=5)
    else:
        out["csv_parse_35887_rows"] = "skipped: ../shared/data absent"
    emit("data", out)


if __name__ == "__main__":
    main()
