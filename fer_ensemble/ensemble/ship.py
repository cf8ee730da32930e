"""`fer-ensemble ship`: a run's chosen ensemble as a compact folder that `Ensemble.load` reads.

The folder holds each member of the run's ensemble.json as NAME.keras with its weights stored in
float16 (half the bytes; Keras casts them back to float32 variables on load, so the model computes
exactly as before on the rounded weights), a trimmed NAME.json sidecar, ensemble.json, and a model
card (MODEL_CARD.md, card.json) with the shipped files' own accuracy when data is given. The
package's built-in ensemble, `Ensemble.pretrained()`, is such a folder (fer_ensemble/pretrained/).
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from .. import _tf  # noqa: F401
from .._io import atomic_dir, write_bytes, write_json, write_text
from ..errors import EnsembleError
from ..rundir import write_sidecar

PRETRAINED_ROOT = Path(__file__).resolve().parent.parent / "pretrained"
PRETRAINED = ("fer2013",)
CARD = "card.json"
CARD_TEXT = "MODEL_CARD.md"
PROBE_SEED = 0
# Sidecar keys a shipped member keeps: what it is and how it was made, not where it was made.
_KEEP = ("format", "name", "builder", "spec", "class_names", "input_shape", "scaling", "data_fingerprint",
         "parameters", "epochs_run", "best_epoch", "initialized_from", "precision", "versions", "tta",
         "data_input_size", "metrics")


def pretrained_dir(name: str = "fer2013") -> Path:
    """The folder of a built-in ensemble; EnsembleError when this install has none of that name."""
    if name not in PRETRAINED:
        raise EnsembleError(f"no built-in ensemble {name!r}; available: {', '.join(PRETRAINED)}")
    path = PRETRAINED_ROOT / name
    if not (path / "ensemble.json").is_file():
        raise EnsembleError(f"{path}: the built-in ensemble's files are missing from this install "
                            "(reinstall fer_ensemble, or pass a run directory with --model)")
    return path


def save_float16(model, path: str | os.PathLike) -> None:
    """`model` as a .keras file whose float32 weights are stored as float16."""
    import h5py

    buffer = io.BytesIO()
    tmp = _keras_temp(path)
    model.save(tmp)
    try:
        with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
            for entry in src.namelist():
                data = src.read(entry)
                if entry.endswith(".weights.h5"):
                    data = _halve_h5(data, h5py)
                out.writestr(entry, data)
    finally:
        tmp.unlink(missing_ok=True)
    write_bytes(path, buffer.getvalue())


def _keras_temp(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.stem}.full{os.getpid()}.keras")


def _halve_h5(data: bytes, h5py) -> bytes:
    """The weights file with every float32 dataset as float16 (groups, attributes and other dtypes kept)."""
    out = io.BytesIO()
    with h5py.File(io.BytesIO(data), "r") as src, h5py.File(out, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v

        def copy(name, obj):
            if isinstance(obj, h5py.Group):
                target = dst.require_group(name)
            else:
                value = obj[()]
                if isinstance(value, np.ndarray) and value.dtype == np.float32:
                    value = value.astype(np.float16)
                target = dst.create_dataset(name, data=value)
            for k, v in obj.attrs.items():
                target.attrs[k] = v

        src.visititems(copy)
    return out.getvalue()


def probe_faces(n: int = 16) -> np.ndarray:
    """Fixed 48x48 face-like probe images (the synthetic set's) whose shipped predictions the card records."""
    from ..data import make_synthetic

    return make_synthetic(max(10 * n, 200), seed=PROBE_SEED).test.x[:n]


def ship_run(run: str | os.PathLike, out: str | os.PathLike, data=None, title: str | None = None,
             notes: str = "") -> dict:
    """Write `run`'s ensemble (its ensemble.json, else all its members) to `out` as a shipped folder.
    `data`: a `FerData` whose validation and test splits are evaluated with the shipped files for
    the card. Returns the card (also written as out/card.json and out/MODEL_CARD.md)."""
    from .ensemble import Ensemble

    run, out = Path(run), Path(out)
    ens = Ensemble.load(run)
    with atomic_dir(out) as stage:
        for m in ens.members:
            save_float16(m.model, stage / f"{m.name}.keras")
            sidecar = {k: m.sidecar[k] for k in _KEEP if k in m.sidecar}
            write_sidecar(stage, m.name, {**sidecar, "model_file": f"{m.name}.keras", "storage": "float16"})
        ens.save_manifest(stage, {"input_size": ens.input_size, "source_run": run.name, "storage": "float16"})
        shipped = Ensemble.load(stage)
        probe = probe_faces()
        drift = float(np.abs(shipped.predict_proba(probe) - ens.predict_proba(probe)).max())
        card = _card(shipped, stage, run, data, drift, probe, title, notes)
        write_json(stage / CARD, card)
        write_text(stage / CARD_TEXT, render_card(card))
    return card


def _card(ens, folder: Path, run: Path, data, drift: float, probe: np.ndarray, title: str | None,
          notes: str) -> dict:
    files = sorted(p for p in folder.iterdir() if p.suffix == ".keras")
    card = {
        "title": title or f"{run.name} ensemble",
        "method": ens.method, "class_names": ens.class_names, "input_size": ens.input_size,
        "members": [{"name": m.name, "builder": m.sidecar.get("builder"), "parameters": m.sidecar.get("parameters"),
                     "args": m.sidecar.get("spec", {}).get("args", {}), "tta": m.tta,
                     "epochs_run": m.sidecar.get("epochs_run"),
                     "initialized_from": (m.sidecar.get("initialized_from") or {}).get("name"),
                     "val_accuracy": _metric(m.sidecar, "val"), "test_accuracy": _metric(m.sidecar, "test")}
                    for m in ens.members],
        "weights_bytes": int(sum(p.stat().st_size for p in files)),
        "storage": "float16",
        "float16_max_prob_change": drift,
        "probe": {"seed": PROBE_SEED, "n": len(probe),
                  "probabilities": np.round(ens.predict_proba(probe), 6).tolist()},
        "notes": notes,
    }
    if data is not None:
        card["data"] = {"source": Path(str(data.source)).name if getattr(data, "source", None) else None,
                        "classes": len(data.class_names)}
        for split, name in (("val", "PublicTest"), ("test", "PrivateTest")):
            part = getattr(data, split)
            result = ens.evaluate(part.x, part.y)
            card[name] = {"images": len(part.y), "accuracy": result["accuracy"],
                          "per_class_accuracy": result["per_class_accuracy"],
                          "confusion_matrix": result["confusion_matrix"]}
    return card


def _metric(sidecar: dict, split: str) -> float | None:
    value = (sidecar.get("metrics") or {}).get(split, {}).get("accuracy")
    return None if value is None else float(value)


def render_card(card: dict) -> str:
    """MODEL_CARD.md from card.json: what the ensemble is, its measured accuracy, its limits."""
    lines = [f"# Model card: {card['title']}", ""]
    members = card["members"]
    params = sum(m["parameters"] or 0 for m in members)
    method = {"mean": "A mean", "accuracy": "An accuracy-weighted", "recall": "A recall-weighted"}.get(
        card["method"], f"A {card['method']}")
    lines += [f"{method} ensemble of {len(members)} models ({params:,} parameters in all, "
              f"{card['weights_bytes'] / 2**20:.2f} MiB of float16 weights) that labels a {card['input_size']}x"
              f"{card['input_size']} grayscale face crop with one of {len(card['class_names'])} expressions: "
              f"{', '.join(card['class_names'])}.", ""]
    if card.get("notes"):
        lines += [card["notes"].strip(), ""]
    if "PrivateTest" in card:
        lines += ["## Accuracy", "",
                  "Measured with the shipped (float16) files. The members and the combination were chosen on "
                  "PublicTest; PrivateTest played no part in any choice.", "",
                  "| split | images | accuracy |", "| --- | --- | --- |"]
        lines += [f"| {s} | {card[s]['images']} | {100 * card[s]['accuracy']:.2f}% |"
                  for s in ("PublicTest", "PrivateTest")]
        lines += ["", "Per class on PrivateTest (recall):", "",
                  "| " + " | ".join(card["class_names"]) + " |", "|" + " --- |" * len(card["class_names"]),
                  "| " + " | ".join(f"{100 * card['PrivateTest']['per_class_accuracy'][c]:.1f}%"
                                    for c in card["class_names"]) + " |", ""]
    lines += ["## Members", "", "| name | builder | args | epochs | warm start from | TTA | PublicTest | PrivateTest |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in members:
        args = ", ".join(f"{k}={v}" for k, v in m["args"].items())
        lines.append(f"| {m['name']} | {m['builder']} | {args} | {m['epochs_run']} | {m['initialized_from'] or '-'} | "
                     f"{m['tta'] or '-'} | {_pct(m['val_accuracy'])} | {_pct(m['test_accuracy'])} |")
    lines += ["", "Storing the weights in float16 moves no probability by more than "
              f"{card['float16_max_prob_change']:.1e} on the probe faces (card.json records the shipped "
              "outputs on them).", ""]
    lines += [LIMITS]
    return "\n".join(lines) + "\n"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


LIMITS = """## Data and known limits

- Trained on FER2013 (Goodfellow et al., 2013): 35,887 grayscale 48x48 faces found by web image
  search, split Training (28,709) / PublicTest (3,589, validation) / PrivateTest (3,589, test).
  Posed and spontaneous expressions are mixed; labels are noisy (FER+ relabelling disagrees with about
  a tenth of them), and human accuracy on the set is estimated at about 65%.
- Seven classes with very uneven support: disgust is 1.5% of Training, happy 25%. Expect fear and sad
  to be confused with each other and with neutral (see the per-class table).
- Mostly adult, frontal or near-frontal faces. Children, elderly faces, profiles beyond about 30
  degrees, strong occlusion (hands, masks, sunglasses) and low light are rare in the data; accuracy on
  them is unmeasured and likely lower. In the app, the Haar cascade finds frontal faces only.
- The crop matters: the models expect a face cropped like FER2013's (whole face, a little forehead
  and chin); `FaceEmotionDetector` grows the detector's box by a margin for that reason.
- An expression label is not an emotion: do not use it to infer what a person feels, and not for
  decisions about people."""
