"""The app's face finder: which Haar settings find how many faces, how many false ones, how fast.

OpenCV's frontal-face cascade is most of `FaceEmotionDetector.detect`'s time besides the model,
and its settings trade recall for speed. This benchmark pastes FER2013 PrivateTest faces (or the
package's synthetic faces when the real data is absent) at 52-200 px into 480x360 canvases, half
on flat grey, half on crops of scikit-image's photos, and runs each setting over the same canvases:

- faces found: a box whose centre lies inside the pasted face and whose side is 0.4-1.5x the
  face's counts as found;
- false boxes: any other box, on the canvases and on the photos themselves (which show no human
  face but the astronaut's, left out);
- ms per canvas: the median over all canvases.

The naive way, OpenCV's cascade on the full image with fer's parameters (1.1, 5, 50 px), runs
beside the shrunk-image settings (`detect_scale`) in the same run.

    python benchmarks/bench_haar.py [--faces 800] [--data ../shared/data/fer2013.npz]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from _common import SHARED, emit

SETTINGS = {   # name: haar_detector arguments
    "full image, fer's parameters (1.1, 5, 50 px)": dict(scale_factor=1.1, min_neighbors=5, min_size=50,
                                                         detect_scale=1.0),
    "full image, 1.1, 5, 40 px": dict(scale_factor=1.1, min_neighbors=5, min_size=40, detect_scale=1.0),
    "full image, 1.2, 3, 48 px": dict(scale_factor=1.2, min_neighbors=3, min_size=48, detect_scale=1.0),
    "detect_scale 0.75, 1.1, 5, 48 px": dict(scale_factor=1.1, min_neighbors=5, min_size=48, detect_scale=0.75),
    "detect_scale 0.5, 1.1, 5, 48 px": dict(scale_factor=1.1, min_neighbors=5, min_size=48, detect_scale=0.5),
    "detect_scale 0.5, 1.08, 3, 48 px": dict(scale_factor=1.08, min_neighbors=3, min_size=48, detect_scale=0.5),
    "detect_scale 0.5, 1.1, 2, 48 px": dict(scale_factor=1.1, min_neighbors=2, min_size=48, detect_scale=0.5),
    "detect_scale 0.5, 1.12, 2, 48 px (the app's default)": {},
}


def backgrounds() -> tuple[list[np.ndarray], str]:
    """scikit-image's sample photos but the astronaut, in gray: from this environment or from the
    peer virtualenv that bench_peer.py makes; smoothed noise where neither has scikit-image."""
    import tempfile
    from pathlib import Path

    import cv2
    from bench_peer import load_photos, parse_args

    venv = parse_args([]).venv
    python = venv / "bin" / "python"
    with tempfile.TemporaryDirectory() as tmp:
        photos, where = load_photos(python if python.exists() else None, Path(tmp))
    used = {k: cv2.cvtColor(v, cv2.COLOR_BGR2GRAY) if v.ndim == 3 else v
            for k, v in photos.items() if k != "astronaut" and min(v.shape[:2]) >= 360}
    if used:
        return list(used.values()), f"{', '.join(used)} ({where})"
    rng = np.random.default_rng(1)
    noise = [cv2.GaussianBlur(rng.integers(0, 256, (512, 512), dtype=np.uint8), (0, 0), s) for s in (2, 4, 8)]
    return noise, f"smoothed noise ({where})"


def faces(n: int, data: str) -> tuple[np.ndarray, str]:
    from pathlib import Path

    from fer_ensemble.data import load_data

    if Path(data).exists():
        x = load_data(data).test.x[:n]
        return x, f"{len(x)} FER2013 PrivateTest faces"
    x = load_data("synthetic", n=max(n * 10, 1000), seed=3).test.x[:n]
    return x, f"{len(x)} synthetic faces ({data} is absent)"


def canvases(face_images: np.ndarray, photos: list[np.ndarray]) -> list[tuple[np.ndarray, tuple]]:
    """One 480x360 canvas per face: the face at a random size and place, on grey or on a photo crop."""
    import cv2

    rng = np.random.default_rng(0)
    out = []
    for i, f in enumerate(face_images):
        s = int(rng.integers(52, 201))
        if i % 2 == 0 or not photos:
            canvas = np.full((360, 480), int(rng.integers(90, 170)), np.uint8)
        else:
            p = photos[int(rng.integers(len(photos)))]
            y, x = int(rng.integers(0, p.shape[0] - 359)), int(rng.integers(0, p.shape[1] - 479))
            canvas = p[y:y + 360, x:x + 480].copy()
        x0, y0 = int(rng.integers(0, 480 - s)), int(rng.integers(0, 360 - s))
        canvas[y0:y0 + s, x0:x0 + s] = cv2.resize(f, (s, s), interpolation=cv2.INTER_CUBIC)
        out.append((canvas, (x0, y0, s)))
    return out


def score(boxes: np.ndarray, truth: tuple) -> tuple[int, int]:
    """(1 if the face is found else 0, false boxes)."""
    x0, y0, s = truth
    hits = 0
    for x, y, w, h in np.asarray(boxes).reshape(-1, 4):
        cx, cy = x + w / 2, y + h / 2
        if x0 <= cx <= x0 + s and y0 <= cy <= y0 + s and 0.4 * s <= max(w, h) <= 1.5 * s:
            hits += 1
    return min(hits, 1), len(np.asarray(boxes).reshape(-1, 4)) - min(hits, 1)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--faces", type=int, default=800, help="canvases, one face each (default %(default)s)")
    p.add_argument("--data", default=str(SHARED / "fer2013.npz"))
    args = p.parse_args(argv)

    from fer_ensemble.app import haar_detector

    photos, photos_desc = backgrounds()
    face_images, faces_desc = faces(args.faces, args.data)
    cans = canvases(face_images, photos)
    results = {}
    for name, kw in SETTINGS.items():
        det = haar_detector(**kw)
        found = {"flat": 0, "photo": 0}
        false, times = 0, []
        for i, (c, truth) in enumerate(cans):
            t = time.perf_counter()
            boxes = det(c)
            times.append(time.perf_counter() - t)
            hit, fp = score(boxes, truth)
            found["flat" if i % 2 == 0 or not photos else "photo"] += hit
            false += fp
        on_photos = sum(len(np.asarray(det(ph)).reshape(-1, 4)) for ph in photos)
        results[name] = {"args": kw or "haar_detector() defaults", "found": sum(found.values()), "found_flat": found["flat"],
                         "found_on_photo": found["photo"], "false_on_canvases": false,
                         "false_on_photos": on_photos, "ms_per_canvas": round(statistics.median(times) * 1e3, 2)}
    base = results[next(iter(SETTINGS))]
    for r in results.values():
        r["found_vs_fer_parameters"] = round(r["found"] / max(base["found"], 1), 3)
        r["time_vs_fer_parameters"] = round(r["ms_per_canvas"] / base["ms_per_canvas"], 3)
    emit("haar", {"canvases": len(cans), "faces": faces_desc, "backgrounds": photos_desc,
                  "settings": results})


if __name__ == "__main__":
    main()
