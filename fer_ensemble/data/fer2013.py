"""FER2013 loaders: the official csv (plain or gzipped), image folders, and the package's .npz cache.

The csv parser is vectorised: all 35,887 pixel strings are joined into one byte buffer and decoded
with numpy in a few passes, instead of one `str.split` per row (see benchmarks/bench_data.py).
"""
from __future__ import annotations

import gzip
import os
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import DataError
from .._io import write_npz
from .types import (CLASS_ALIASES, FER7_CLASSES, SPLITS, USAGE_TO_SPLIT, FerData, Split, to_fer6)

IMAGE_SIDE = 48
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm"}
CACHE_VERSION = 1
SPLIT_FOLDER_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "publictest": "val",
    "test": "test", "privatetest": "test",
}


def load_fer2013(path: str | os.PathLike, classes: str = "fer7") -> FerData:
    """Load FER2013 from a csv, csv.gz, image-folder root or .npz cache.

    Splits follow the official Usage column: Training -> train, PublicTest -> val,
    PrivateTest -> test. `classes="fer6"` merges disgust into angry.
    """
    if classes not in ("fer7", "fer6"):
        raise ValueError(f"classes must be 'fer7' or 'fer6', got {classes!r}")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    name = path.name.lower()
    if path.is_dir():
        data = _load_folder(path)
    elif name.endswith(".npz"):
        data = _load_npz(path)
    elif name.endswith(".csv") or name.endswith(".csv.gz"):
        data = _load_csv(path)
    else:
        raise DataError(f"{path}: unsupported source; expected fer2013.csv, .csv.gz, .npz or an image folder")
    return to_fer6(data) if classes == "fer6" else data


def save_cache(data: FerData, path: str | os.PathLike) -> Path:
    """Write the fast .npz cache (uncompressed: re-loading the full set takes ~0.1 s)."""
    arrays = {"cache_version": np.array(CACHE_VERSION), "class_names": np.array(data.class_names),
              "source": np.array(data.source)}
    for s in SPLITS:
        arrays[f"{s}_x"] = data.split(s).x
        arrays[f"{s}_y"] = data.split(s).y
        if data.split(s).soft is not None:
            arrays[f"{s}_soft"] = data.split(s).soft
    write_npz(path, compressed=False, **arrays)
    return Path(path)


# --------------------------------------------------------------------------- csv

def read_fer_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, usage, images) of a fer2013.csv or .csv.gz, in row order."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    return parse_fer_csv_bytes(raw, str(path))


def _load_csv(path: Path) -> FerData:
    emotion, usage, images = read_fer_csv(path)
    splits = {}
    for usage_name, split in USAGE_TO_SPLIT.items():
        idx = np.flatnonzero(usage == usage_name)
        splits[split] = Split(images[idx], emotion[idx])
    return FerData(**splits, class_names=FER7_CLASSES, source=str(path))


def parse_fer_csv_bytes(raw: bytes, name: str = "<csv>") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse the bytes of a fer2013.csv into (labels int64, usage str array, images uint8 N×48×48).

    Fields are located with numpy (newline and comma positions); the short label and Usage fields
    are read per row, then blanked, so that the pixel decoder can run over the whole buffer at once.
    Errors name the file and the 1-based line number (the header is line 1).
    """
    pad = 4  # leading spaces: the decoder looks up to 3 bytes before a token's last digit
    a = np.empty(len(raw) + pad, dtype=np.uint8)
    a[:pad] = 32
    a[pad:] = np.frombuffer(raw, dtype=np.uint8)
    if raw.startswith(b"\xef\xbb\xbf"):
        a[pad:pad + 3] = 32
    line_ends = np.flatnonzero(a == 10)
    if line_ends.size == 0 or line_ends[-1] != a.size - 1:
        line_ends = np.append(line_ends, a.size)  # no final newline
    cols = _header_columns(raw[:line_ends[0] - pad], name)
    ip = cols.index("pixels")
    starts = line_ends[:-1] + 1
    stops = line_ends[1:]
    keep = stops - starts > 1  # drop blank lines (nothing, or a lone "\r")
    if not keep.all():
        blank_tail = np.flatnonzero(~keep)
        if blank_tail[0] != keep.size - blank_tail.size:  # blank lines only allowed at the end
            raise DataError(f"{name}: line {int(blank_tail[0]) + 2}: empty line inside the data")
        starts, stops = starts[keep], stops[keep]
    n = starts.size
    if n == 0:
        raise DataError(f"{name}: no data rows (empty source)")

    commas = np.flatnonzero(a == 44)
    first = np.searchsorted(commas, starts)
    per_line = np.searchsorted(commas, stops) - first
    wrong = np.flatnonzero(per_line != len(cols) - 1)
    if wrong.size:
        r = int(wrong[0])
        raise DataError(f"{name}: line {r + 2}: expected {len(cols)} fields, found {per_line[r] + 1}")
    # Field k of row r spans (left[k], right[k]) in `a`.
    cpos = commas[first[:, None] + np.arange(len(cols) - 1)]
    left = np.column_stack([starts - 1, cpos])
    right = np.column_stack([cpos, stops])
    labels, usage = _short_fields(a, raw, left, right, cols, pad, name)
    a[:line_ends[0]] = 32  # header
    for edge in (left[:, ip] + 1, right[:, ip] - 1):  # quotes and a carriage return around pixels
        hit = edge[(a[edge] == 34) | (a[edge] == 13)]
        a[hit] = 32
    images = _decode_pixels(a, line_ends, stops, n, name)
    return labels, usage.astype(str), images


def _header_columns(header_bytes: bytes, name: str) -> list[str]:
    """The header's column names, lower-case; emotion, pixels and usage must be among them."""
    header = header_bytes.decode("utf-8", "replace").lstrip("\ufeff").strip()
    cols = [c.strip().strip('"').lower() for c in header.split(",")]
    missing = [c for c in ("emotion", "pixels", "usage") if c not in cols]
    if missing:
        raise DataError(f"{name}: missing column(s) {', '.join(missing)} in header {header!r}; "
                        "expected 'emotion,pixels,Usage'")
    return cols


def _short_fields(a: np.ndarray, raw: bytes, left: np.ndarray, right: np.ndarray, cols: list[str], pad: int,
                  name: str) -> tuple[np.ndarray, np.ndarray]:
    """Read each row's label and Usage, checked, and blank every non-pixel field in `a` (in place)."""
    ie, ip, iu = cols.index("emotion"), cols.index("pixels"), cols.index("usage")
    n = left.shape[0]
    labels = np.empty(n, dtype=np.int64)
    usage = np.empty(n, dtype=object)
    mv = memoryview(raw)
    others = [k for k in range(len(cols)) if k != ip]
    last = len(cols) - 1
    left_l, right_l = left.tolist(), right.tolist()
    for r in range(n):
        lf, rt = left_l[r], right_l[r]
        field = bytes(mv[lf[ie] - pad + 1:rt[ie] - pad]).strip(b' "\r')
        try:
            labels[r] = int(field)
        except ValueError:
            raise DataError(f"{name}: line {r + 2}: emotion {field[:20].decode('utf-8', 'replace')!r} "
                            "is not an integer") from None
        u = bytes(mv[lf[iu] - pad + 1:rt[iu] - pad]).strip(b' "\r').decode("utf-8", "replace")
        if u not in USAGE_TO_SPLIT:
            raise DataError(f"{name}: line {r + 2}: unknown Usage {u!r}; expected one of "
                            f"{', '.join(USAGE_TO_SPLIT)}")
        usage[r] = u
        for k in others:  # blank the non-pixel fields and the commas on both sides of them
            a[lf[k] + (k == 0):rt[k] + (k < last)] = 32
    bad = np.flatnonzero((labels < 0) | (labels >= len(FER7_CLASSES)))
    if bad.size:
        r = int(bad[0])
        raise DataError(f"{name}: line {r + 2}: emotion {labels[r]} outside the class range 0-6")
    return labels, usage


def _decode_pixels(a: np.ndarray, line_ends: np.ndarray, row_stops: np.ndarray, n_rows: int,
                   name: str) -> np.ndarray:
    """Decode the space-separated integers 0-255 of each row of `a` into (n_rows, 48, 48).

    Rows are decoded in chunks on a thread pool (numpy releases the GIL in these loops).
    """
    def line_of(pos: int) -> int:
        return int(np.searchsorted(line_ends, pos)) + 1

    n_chunks = min(8, max(1, n_rows // 2000))
    bounds = np.linspace(0, n_rows, n_chunks + 1).astype(int)
    row_starts = np.concatenate(([0], row_stops[:-1]))
    out = np.empty((n_rows, N_PIXELS), dtype=np.uint8)

    def work(c: int) -> None:
        r0, r1 = int(bounds[c]), int(bounds[c + 1])
        lo = int(row_starts[r0])
        chunk = a[lo:int(row_stops[r1 - 1])]
        problem = _decode_chunk(chunk, out[r0:r1], row_stops[r0:r1] - lo)
        if problem is not None:
            kind, pos, detail = problem
            if kind == "count":
                raise DataError(f"{name}: line {r0 + pos + 2}: {detail} pixel values, expected {N_PIXELS} (48x48)")
            line = line_of(lo + pos)
            if kind == "char":
                raise DataError(f"{name}: line {line}: non-numeric pixel value near {detail!r}")
            raise DataError(f"{name}: line {line}: pixel value {detail!r} outside 0-255")

    with ThreadPoolExecutor(max_workers=min(n_chunks, os.cpu_count() or 1)) as pool:
        for f in [pool.submit(work, c) for c in range(n_chunks)]:
            f.result()
    return out.reshape(n_rows, IMAGE_SIDE, IMAGE_SIDE)


def _decode_chunk(a: np.ndarray, out: np.ndarray, stops: np.ndarray) -> tuple | None:
    """Decode one chunk (starting at a separator) into `out`; return (kind, position, detail) on error.

    Works from token ends only: a token's value is its last digit, plus ten times the byte before
    when that is a digit, plus a hundred times the one before that, read with 1-D gathers.
    """
    digit = a - np.uint8(48)  # wraps for non-digits, so `< 10` tests "is a digit"
    isd = digit < 10
    if np.count_nonzero(a == 32) + np.count_nonzero(a == 10) + np.count_nonzero(isd) != a.size:
        p = int(np.flatnonzero(~isd & (a != 32) & (a != 10))[0])
        return "char", p, a[max(0, p - 5):p + 5].tobytes()
    is_end = isd.copy()
    is_end[:-1] &= ~isd[1:]
    ends = np.flatnonzero(is_end)
    del is_end
    per_row = np.diff(np.searchsorted(ends, stops), prepend=0)
    wrong = np.flatnonzero(per_row != N_PIXELS)
    if wrong.size:
        return "count", int(wrong[0]), int(per_row[wrong[0]])
    # The chunk starts at a separator, so a token's end is at index >= 1; clip the look-back.
    idx = ends
    values = np.take(digit, idx).astype(np.uint16)
    idx = np.maximum(idx - 1, 0)
    d1 = np.take(digit, idx)
    idx -= 1
    np.maximum(idx, 0, out=idx)
    d2 = np.take(digit, idx)
    idx -= 1
    np.maximum(idx, 0, out=idx)
    d3 = np.take(digit, idx)
    two = d1 < 10
    three = two & (d2 < 10)
    t = d1.astype(np.uint16)
    t *= 10
    t *= two
    values += t
    t = d2.astype(np.uint16)
    t *= 100
    t *= three
    values += t
    too_big = np.flatnonzero((three & (d3 < 10)) | (values > 255))
    if too_big.size:
        p = int(ends[too_big[0]])
        return "value", p, a[:p + 1].tobytes().rsplit(None, 1)[-1].decode()
    out[...] = values.reshape(out.shape)
    return None


# --------------------------------------------------------------------------- npz

def _load_npz(path: Path) -> FerData:
    try:
        with np.load(path, allow_pickle=False) as z:
            return _npz_data(path, z)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: cannot read .npz, truncated or corrupt ({e or e.__class__.__name__})") from None


def _npz_data(path: Path, z) -> FerData:
    """FerData from an open .npz: the package's cache, or the csv's row-order layout."""
    keys = set(z.files)
    if {"train_x", "train_y", "class_names"} <= keys:
        splits = {}
        for s in SPLITS:
            soft = z[f"{s}_soft"] if f"{s}_soft" in keys else None
            splits[s] = Split(z[f"{s}_x"].astype(np.uint8), z[f"{s}_y"].astype(np.int64), soft)
        source = str(z["source"]) if "source" in keys else str(path)
        return FerData(**splits, class_names=tuple(str(c) for c in z["class_names"]), source=source)
    if not {"images", "labels", "usage"} <= keys:  # nor the row-order layout of the official csv
        raise DataError(f"{path}: not a fer_ensemble cache (arrays found: {sorted(keys)})")
    images, labels, usage = z["images"], z["labels"].astype(np.int64), z["usage"].astype(str)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{path}: images have shape {images.shape}, expected (N, 48, 48)")
    unknown = sorted(set(np.unique(usage)) - set(USAGE_TO_SPLIT))
    if unknown:
        raise DataError(f"{path}: unknown Usage value(s) {unknown}")
    splits = {s: Split(images[usage == u].astype(np.uint8), labels[usage == u]) for u, s in USAGE_TO_SPLIT.items()}
    return FerData(**splits, class_names=FER7_CLASSES, source=str(path))


# --------------------------------------------------------------------------- folders

def _load_folder(root: Path) -> FerData:
    """train/<class>/*, test/<class>/* (PublicTest_/PrivateTest_ name prefixes) or train/val/test."""
    split_dirs: dict[str, list[Path]] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        split = SPLIT_FOLDER_ALIASES.get(d.name.lower())
        if split is not None:
            split_dirs.setdefault(split, []).append(d)
    if "train" not in split_dirs:
        raise DataError(f"{root}: no train/ folder; expected train/<class>/*.jpg and test/<class>/*.jpg "
                        "(or train/, val/, test/)")
    files: dict[str, list[tuple[Path, int]]] = {s: [] for s in SPLITS}
    for split, dirs in split_dirs.items():
        for d in dirs:
            for cls_dir in sorted(p for p in d.iterdir() if not p.name.startswith(".")):
                if not cls_dir.is_dir():
                    raise DataError(f"{cls_dir}: expected only class folders inside {d}")
                label = CLASS_ALIASES.get(cls_dir.name.lower())
                if label is None:
                    raise DataError(f"{cls_dir}: unknown class folder {cls_dir.name!r}; expected one of "
                                    f"{', '.join(FER7_CLASSES)} (or 0-6)")
                for f in sorted(cls_dir.iterdir()):
                    if f.name.startswith("."):
                        continue
                    target = split
                    if split == "test" and "val" not in split_dirs:
                        if f.name.startswith("PublicTest"):
                            target = "val"
                        elif not f.name.startswith("PrivateTest"):
                            raise DataError(f"{f}: cannot tell PublicTest from PrivateTest; name test images "
                                            "PublicTest_*/PrivateTest_* or add a val/ folder")
                    files[target].append((f, label))
    if not any(files.values()):
        raise DataError(f"{root}: no images found (empty source)")
    converted = [0]
    splits = {s: _read_images(files[s], converted) for s in SPLITS}
    if converted[0]:
        warnings.warn(f"{root}: {converted[0]} image(s) were not 48x48 grayscale and were converted", stacklevel=3)
    return FerData(**splits, class_names=FER7_CLASSES, source=str(root))


def _read_images(items: list[tuple[Path, int]], converted: list[int]) -> Split:
    from PIL import Image, UnidentifiedImageError

    def read(item: tuple[Path, int]) -> tuple[np.ndarray, bool]:
        f = item[0]
        try:
            with Image.open(f) as im:
                changed = im.mode != "L" or im.size != (IMAGE_SIDE, IMAGE_SIDE)
                im = im.convert("L")
                if im.size != (IMAGE_SIDE, IMAGE_SIDE):
                    im = im.resize((IMAGE_SIDE, IMAGE_SIDE), Image.BILINEAR)
                return np.asarray(im, dtype=np.uint8), changed
        except (UnidentifiedImageError, OSError) as e:   # PIL says "image file is truncated" itself
            raise DataError(f"{f}: not a readable image ({e.__class__.__name__}: {e})") from None

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(read, items))
    converted[0] += sum(changed for _, changed in results)
    x = np.stack([r for r, _ in results]) if results else np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.uint8)
    y = np.array([label for _, label in items], dtype=np.int64)
    return Split(x, y)
