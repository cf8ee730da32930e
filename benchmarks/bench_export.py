"""The exported ensemble on CPU: the Keras fused model against the same ensemble exported to ONNX
and run by onnxruntime, side by side in one run: per-face latency (one 48x48 face per call) and
throughput on batches of 256, medians of repeated calls, and their ratio.

    python benchmarks/bench_export.py [--run RUN] [--repeat N] [--threads T]

Without --run the ensemble is the five quick-zoo members (models_zoo/quick.toml) with their initial
weights, written to a temporary folder: speed does not depend on what the weights learned, so
nothing is trained. The Keras side is `Ensemble.predict_proba`, the traced fused model (the way the
package predicts); onnxruntime runs the file `fer-ensemble export --format onnx` writes, with its
default CPU threads unless --threads is given. Both get the same float32 pixels and are checked to
agree to 1e-4 before timing.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from _common import emit, median_time
from fer_ensemble.ensemble import Ensemble
from fer_ensemble.ensemble.export import export_ensemble
from fer_ensemble.models import create_model, load_zoo

ZOO = Path(__file__).resolve().parents[1] / "models_zoo" / "quick.toml"
FER7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def quick_zoo_run(folder: Path) -> Path:
    """The quick zoo's members, untrained, as a run directory an Ensemble loads."""
    for spec in load_zoo(ZOO).models:
        model = create_model(spec.builder, **spec.args)
        model.save(folder / f"{spec.name}.keras")
        (folder / f"{spec.name}.json").write_text(json.dumps({
            "name": spec.name, "builder": spec.builder, "model_file": f"{spec.name}.keras", "class_names": FER7,
            "input_shape": [48, 48, 1], "scaling": {"scale": 1 / 255, "offset": 0.0}}))
    return folder


def interleaved(a, b, n: int) -> tuple[float, float]:
    """Median wall times of `a` and `b` over n rounds of one call each, alternating."""
    times_a, times_b = [], []
    for _ in range(n):
        times_a.append(median_time(a, 1))
        times_b.append(median_time(b, 1))
    return float(np.median(times_a)), float(np.median(times_b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run directory to export (default: the untrained quick zoo)")
    parser.add_argument("--repeat", type=int, default=7, help="timed calls per batch measurement (median)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    args = parser.parse_args()
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else quick_zoo_run(Path(tmp))
        onnx_path = Path(tmp) / "ensemble.onnx"
        info = export_ensemble(run, "onnx", out=onnx_path)
        ens = Ensemble.load(run)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        faces = np.random.default_rng(0).integers(0, 256, (256, ens.input_size, ens.input_size), dtype=np.uint8)
        batch, one = Ensemble.as_batch(faces), Ensemble.as_batch(faces[:1])

        def keras_run(x):
            return ens.predict_proba(x)

        def onnx_run(x):
            return session.run(None, {name: x})[0]

        diff = float(np.abs(keras_run(batch) - onnx_run(batch)).max())     # also warms both up
        assert diff <= 1e-4, diff
        keras_run(one), onnx_run(one)
        # Interleaved, so that a background load slows both sides alike.
        keras_one, onnx_one = interleaved(lambda: keras_run(one), lambda: onnx_run(one), 15 * args.repeat)
        keras_batch, onnx_batch = interleaved(lambda: keras_run(batch), lambda: onnx_run(batch), args.repeat)
        size_kb = round(onnx_path.stat().st_size / 1024, 1)
    emit("export", {
        "members": info["members"], "method": info["method"], "input_size": info["input_size"],
        "onnx_file_kb": size_kb,
        "max_abs_diff_keras_vs_onnx": diff, "repeat": args.repeat, "onnx_threads": args.threads or "default",
        "per_face_latency_ms": {"keras_fused": round(keras_one * 1e3, 2), "onnxruntime": round(onnx_one * 1e3, 2),
                                "onnx_speedup": round(keras_one / onnx_one, 2)},
        "batch256": {"keras_fused_s": round(keras_batch, 4), "onnxruntime_s": round(onnx_batch, 4),
                     "keras_faces_per_s": round(256 / keras_batch), "onnx_faces_per_s": round(256 / onnx_batch),
                     "onnx_speedup": round(keras_batch / onnx_batch, 2)}})


if __name__ == "__main__":
    main()
