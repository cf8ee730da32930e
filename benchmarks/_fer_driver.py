"""The `fer` package's side of benchmarks/bench_peer.py. It runs inside the peer virtualenv that
bench_peer.py makes (fer pins its own stack), never in this package's environment, and imports
nothing from fer_ensemble.

    python _fer_driver.py photos OUT.npz     scikit-image's sample photos as BGR arrays (no fer import)
    python _fer_driver.py serve INPUTS.npz   one JSON command per line on stdin, one JSON reply per line

INPUTS.npz holds test_x (N, 48, 48) uint8 faces and images named image__NAME (BGR uint8). Commands:
{"cmd": "info"}, {"cmd": "accuracy", "out": PATH.npz}, {"cmd": "detect", "image": NAME, "warmup": W,
"repeat": R}, {"cmd": "faces", "names": [...]}, {"cmd": "quit"}. A failed command replies {"error": ...}.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback


def photos(out: str) -> None:
    import numpy as np
    from skimage import data

    arrays = {}
    for name in ("astronaut", "camera", "coffee", "chelsea", "rocket"):
        try:
            img = np.asarray(getattr(data, name)())
        except Exception:            # an image that this scikit-image must download: left out
            continue
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        arrays[name] = np.ascontiguousarray(img[..., :3][..., ::-1]).astype(np.uint8)   # RGB -> BGR
    np.savez(out, **arrays)


class Peer:
    def __init__(self, inputs: str):
        import numpy as np

        with np.load(inputs) as z:
            self.arrays = {k: z[k] for k in z.files}
        import cv2
        import fer
        import tensorflow as tf
        try:
            from fer import FER
        except ImportError:         # fer 25.10.3's __init__ does not export it
            from fer.fer import FER

        self.cv2, self.np = cv2, np
        self.fer = FER(mtcnn=False)                     # the Haar cascade; the package's defaults otherwise
        self.versions = {"fer": fer.__version__, "tensorflow": tf.__version__, "opencv": cv2.__version__,
                         "numpy": np.__version__, "python": sys.version.split()[0]}

    def _private(self, name: str):
        return getattr(self.fer, f"_FER__{name}")

    def info(self) -> dict:
        return {"versions": self.versions, "use_tflite": bool(self.fer.use_tflite),
                "classifier_input": list(self._private("emotion_target_size")),
                "labels": [self.fer._get_labels()[i] for i in range(7)],
                "haar": {"scaleFactor": self._private("scale_factor"), "minNeighbors": self._private("min_neighbors"),
                         "minSize": self._private("min_face_size"),
                         "cascade": "cv2.data.haarcascades/haarcascade_frontalface_default.xml"},
                "offsets": list(self._private("offsets"))}

    def accuracy(self, out: str) -> dict:
        """Class probabilities of every face two ways: the crop straight into fer's classifier
        (resized to its input and scaled to -1..1 as detect_emotions does), and through the public
        detect_emotions with the whole 48x48 image as the face rectangle (fer then pads it and
        adds its 10 px offsets, so the face fills less of the classifier's input)."""
        np, cv2 = self.np, self.cv2
        faces = self.arrays["test_x"]
        size = tuple(self._private("emotion_target_size"))
        t = time.perf_counter()
        x = np.stack([cv2.resize(f, size) for f in faces]).astype("float32")
        direct = np.asarray(self.fer._classify_emotions((x / 255.0 - 0.5) * 2.0), dtype=np.float32)
        t_direct = time.perf_counter() - t
        labels = [self.fer._get_labels()[i] for i in range(7)]
        t = time.perf_counter()
        public = np.zeros((len(faces), 7), np.float32)
        for i, f in enumerate(faces):
            found = self.fer.detect_emotions(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR), face_rectangles=[(0, 0, 48, 48)])
            if found:
                public[i] = [found[0]["emotions"][c] for c in labels]
        t_public = time.perf_counter() - t
        np.savez(out, direct=direct, public=public)
        return {"faces": len(faces), "direct_s": round(t_direct, 2), "public_api_s": round(t_public, 2)}

    def detect(self, image: str, warmup: int, repeat: int) -> dict:
        frame = self.arrays[f"image__{image}"]
        gray = self.cv2.cvtColor(frame, self.cv2.COLOR_BGR2GRAY)
        for _ in range(warmup):
            self.fer.detect_emotions(frame)
        times, haar = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            found = self.fer.detect_emotions(frame)
            times.append(time.perf_counter() - t)
        for _ in range(repeat):     # the cascade alone, as detect_emotions calls it
            t = time.perf_counter()
            self.fer.find_faces(frame, gray_img=gray)
            haar.append(time.perf_counter() - t)
        return {"ms": [round(1e3 * s, 2) for s in times], "haar_ms": [round(1e3 * s, 2) for s in haar],
                "faces": len(found), "boxes": [[int(v) for v in f["box"]] for f in found]}

    def faces(self, names: list[str]) -> dict:
        out = {}
        for name in names:
            found = self.fer.detect_emotions(self.arrays[f"image__{name}"])
            out[name] = {"faces": len(found), "boxes": [[int(v) for v in f["box"]] for f in found]}
        return out


def serve(inputs: str) -> None:
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)                   # whatever TensorFlow or fer print goes to stderr, not into the replies
    sys.stdout = sys.stderr
    peer = None
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if peer is None:
                peer = Peer(inputs)
            name = cmd.pop("cmd")
            if name == "quit":
                break
            reply = getattr(peer, name)(**cmd)
        except Exception as e:      # reported to the benchmark, which puts it in its JSON
            traceback.print_exc()
            reply = {"error": f"{type(e).__name__}: {e}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    {"photos": photos, "serve": serve}[sys.argv[1]](sys.argv[2])
