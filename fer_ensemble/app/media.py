"""Run a `FaceEmotionDetector` over image files and folders, a video file or a camera.

Every file is reported on its own (faces found, no face, unreadable) and the run goes on; results
go to CSV and JSON beside the annotated copies, each written under a temporary name and renamed.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .._io import atomic_path, write_json, write_text
from ..errors import DataError, FerEnsembleError
from .detector import FaceEmotionDetector, read_image
from .draw import annotate

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(file, name relative to its argument) for files and the images inside folders (recursive)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [(f, f.relative_to(p)) for f in sorted(p.rglob("*"))
                    if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        else:
            out.append((p, Path(p.name)))
    return out


def _face_rows(base: dict, faces: list[dict], class_names: list[str]) -> list[dict]:
    if not faces:
        return [{**base, "face": None, "x": None, "y": None, "w": None, "h": None, "label": None,
                 "confidence": None, **{f"p_{c}": None for c in class_names}}]
    return [{**base, "face": i, **dict(zip("xywh", f["box"])), "label": f["label"], "confidence": f["confidence"],
             **{f"p_{c}": f["probabilities"][c] for c in class_names}} for i, f in enumerate(faces)]


def predict_images(detector: FaceEmotionDetector, paths: Iterable[str | os.PathLike], out_dir: str | os.PathLike,
                   write_annotated: bool = True) -> pd.DataFrame:
    """Detect and classify faces in image files/folders; write annotated copies and
    out_dir/predictions.{csv,json}. Returns one row per face (or per file without faces)."""
    import cv2

    out_dir = Path(out_dir)
    paths = list(paths)
    files = expand_paths(paths)
    if not files:
        raise DataError(f"{', '.join(map(str, paths)) or 'no paths given'}: no image files found "
                        f"(looked for {', '.join(IMAGE_SUFFIXES)})")
    rows, report = [], []
    for path, rel in files:
        entry = {"file": str(path)}
        try:
            image = read_image(path)
            faces = detector.detect(image)
        except DataError as e:
            report.append({**entry, "status": "unreadable", "error": str(e), "faces": []})
            rows += _face_rows({**entry, "status": "unreadable"}, [], detector.class_names)
            continue
        status = "ok" if faces else "no face"
        if write_annotated:
            target = out_dir / rel.parent / f"{rel.stem}.annotated{rel.suffix if rel.suffix.lower() in ('.jpg', '.jpeg', '.png', '.bmp') else '.png'}"
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                if not cv2.imwrite(str(tmp), annotate(image, faces)):
                    raise FerEnsembleError(f"{target}: cannot write the annotated image")
            entry["annotated"] = str(target)
        report.append({**entry, "status": status, "faces": faces})
        rows += _face_rows({**entry, "status": status}, faces, detector.class_names)
    table = pd.DataFrame(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "predictions.csv", table.to_csv(index=False))
    write_json(out_dir / "predictions.json", {"class_names": detector.class_names, "files": report})
    return table


def predict_video(detector: FaceEmotionDetector, video: str | os.PathLike, out_dir: str | os.PathLike,
                  stride: int = 1, batch_frames: int = 16, write_annotated: bool = True) -> pd.DataFrame:
    """Annotate a video (every `stride`-th frame is analysed; the others reuse its boxes) and write
    out_dir/NAME.annotated.mp4 and out_dir/NAME.frames.csv (one row per face per analysed frame)."""
    import cv2

    video, out_dir = Path(video), Path(out_dir)
    if stride < 1:
        raise FerEnsembleError(f"--stride must be >= 1, got {stride}")
    if not video.is_file():
        raise DataError(f"{video}: no such file")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise DataError(f"{video}: cannot open as a video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{video.stem}.annotated.mp4"
    rows, writer, n_frames, last = [], None, 0, []
    pending: list[tuple[int, np.ndarray]] = []
    t0 = time.perf_counter()

    def flush():
        nonlocal last, writer
        analysed = [(i, f) for i, f in pending if i % stride == 0]
        results = dict(zip([i for i, _ in analysed], detector.detect_batch([f for _, f in analysed])))
        for i, frame in pending:
            if i in results:
                last = results[i]
                rows.extend(_face_rows({"frame": i, "time_s": round(i / fps, 4)}, last, detector.class_names))
            if write_annotated:
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                writer.write(annotate(frame, last))
        pending.clear()

    with (atomic_path(target) if write_annotated else contextlib.nullcontext()) as tmp_video:
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                pending.append((n_frames, frame))
                n_frames += 1
                if len(pending) >= batch_frames * stride:
                    flush()
            if pending:
                flush()
        finally:
            cap.release()
            if writer is not None:
                writer.release()
        if n_frames == 0:
            raise DataError(f"{video}: no frames could be read (empty or unsupported video)")
    table = pd.DataFrame(rows)
    write_text(out_dir / f"{video.stem}.frames.csv", table.to_csv(index=False))
    table.attrs.update(frames=n_frames, seconds=time.perf_counter() - t0, fps_in=fps)
    return table


def display_available() -> str | None:
    """None when a window can be opened, else the reason why not."""
    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set): --camera shows a live window; use --video FILE instead"
    try:
        cv2.namedWindow("fer-ensemble probe")
        cv2.destroyWindow("fer-ensemble probe")
    except cv2.error:
        return ("this OpenCV build has no GUI support (opencv-python-headless); "
                "pip install opencv-python for --camera, or use --video FILE")
    return None


def run_camera(detector: FaceEmotionDetector, index: int = 0, stride: int = 1) -> int:
    """Live window with boxes and labels from camera `index`; q or Esc quits. Returns frames shown."""
    import cv2

    reason = display_available()
    if reason:
        raise FerEnsembleError(reason)
    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise FerEnsembleError(f"camera {index}: cannot open (is it connected and free?)")
    shown, last = 0, []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if shown % stride == 0:
                last = detector.detect(frame)
            cv2.imshow("fer-ensemble (q to quit)", annotate(frame, last))
            shown += 1
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                break
    finally:
        cap.release()
        cv2.destroyAllWindows()
    return shown
