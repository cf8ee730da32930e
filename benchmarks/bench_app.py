"""App speed on CPU: per-face latency and video frames per second with the fused ensemble of the
quick zoo (five members, trained on synthetic data into runs/bench_quick when absent), against
the naive app that predicts each face alone by looping over the members with Keras `predict`.

Frames are 640x480 with three faces (FER2013 PrivateTest faces when ../shared/data is there,
synthetic faces otherwise), enlarged to 150 px. The detector runs OpenCV's Haar cascade over the
whole frame (its real cost) and then returns the three known boxes, so that every frame has the
same number of faces whichever faces are used.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from _common import SHARED, emit, median_time
from fer_ensemble.app import FaceEmotionDetector, crop_faces, haar_detector, predict_video
from fer_ensemble.data import make_synthetic
from fer_ensemble.ensemble import Ensemble
from fer_ensemble.models import load_zoo
from fer_ensemble.training import train_all

RUN = Path("runs/bench_quick")



def make_frames(faces: np.ndarray, n: int, rng) -> tuple[list[np.ndarray], np.ndarray]:
    boxes = np.array([[40, 160, 150, 150], [245, 100, 150, 150], [450, 200, 150, 150]])
    frames = []
    for k in range(n):
        frame = rng.integers(90, 140, (480, 640), dtype=np.uint8)
        for j, (x, y, w, h) in enumerate(boxes):
            frame[y:y + h, x:x + w] = cv2.resize(faces[(k + j) % len(faces)], (w, h), interpolation=cv2.INTER_CUBIC)
        frames.append(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    return frames, boxes


def main():
    data = make_synthetic(3000, seed=0)
    train_all(load_zoo("models_zoo/quick.toml"), data, RUN, progress=False, overrides={"epochs": 3})
    ens = Ensemble.load(RUN)
    if (SHARED / "fer2013.npz").exists():
        z = np.load(SHARED / "fer2013.npz")
        faces, source = z["images"][z["usage"] == "PrivateTest"][:30], "FER2013 PrivateTest"
    else:
        faces, source = data.test.x[:30], "synthetic"
    rng = np.random.default_rng(0)
    frames, boxes = make_frames(faces, 40, rng)
    haar = haar_detector()
    detector = FaceEmotionDetector(ens, detector=lambda g: (haar(g), boxes)[1])

    gray = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)
    crops = crop_faces(gray, boxes, ens.input_size)
    one = crops[:1]
    ens.predict_proba(one)
    ens.predict_proba(one, fused=False)
    detector.detect(frames[0])
    haar_ms = median_time(lambda: haar(gray), 10) * 1e3
    face_fused_ms = median_time(lambda: ens.predict_proba(one), 30) * 1e3
    face_loop_ms = median_time(lambda: ens.predict_proba(one, fused=False), 10) * 1e3
    frame_ours_ms = median_time(lambda: detector.detect(frames[0]), 10) * 1e3

    def naive_frame(frame):
        g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        haar(g)
        return [ens.predict_proba(c, fused=False) for c in crop_faces(g, boxes, ens.input_size)]

    frame_naive_ms = median_time(lambda: naive_frame(frames[0]), 5) * 1e3

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "clip.mp4"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (640, 480))
        for f in frames:
            writer.write(f)
        writer.release()
        fps = {}
        for stride in (1, 3):
            table = predict_video(detector, video, Path(tmp) / "out", stride=stride)
            fps[f"stride_{stride}"] = round(table.attrs["frames"] / table.attrs["seconds"], 2)
        t = time.perf_counter()
        cap = cv2.VideoCapture(str(video))
        n = 0
        while True:
            ok, f = cap.read()
            if not ok:
                break
            naive_frame(f)
            n += 1
        cap.release()
        fps["naive_stride_1"] = round(n / (time.perf_counter() - t), 2)

    emit("app", {"members": len(ens.members), "faces": source, "frame": "640x480, 3 faces",
                 "haar_ms_per_frame": round(haar_ms, 1),
                 "per_face_latency_ms": {"fused (Ensemble.predict_proba)": round(face_fused_ms, 2),
                                         "naive member loop": round(face_loop_ms, 2),
                                         "speedup": round(face_loop_ms / face_fused_ms, 1)},
                 "frame_3_faces_ms": {"ours (haar + one fused batch)": round(frame_ours_ms, 1),
                                      "naive (haar + each face through the member loop)": round(frame_naive_ms, 1),
                                      "speedup": round(frame_naive_ms / frame_ours_ms, 1)},
                 "video_frames_per_s (decode + detect + classify + annotate + encode)": fps,
                 "video_speedup_stride_1": round(fps["stride_1"] / fps["naive_stride_1"], 1)})


if __name__ == "__main__":
    main()
