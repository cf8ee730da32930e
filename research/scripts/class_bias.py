"""How much of a member's error is a shifted class prior? Fit a per-class bias on validation.

For each member cache (NAME.preds.npz) it fits one additive bias per class to the log
probabilities, by coordinate search for the best validation (PublicTest) accuracy, and reports
test (PrivateTest) accuracy before and after, with how often each class is predicted. Test
labels are only scored, never used to fit. Prints JSON:

    python research/scripts/class_bias.py results/fer2013-cpu vgg_x32 vgg_w32
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

GRID = np.linspace(-1.5, 1.5, 61)


def fit_class_bias(proba: np.ndarray, y: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Per-class additive log-probability bias maximising accuracy on (proba, y); the first of
    equally good values wins, so an already well-calibrated member keeps biases near 0."""
    logp = np.log(np.clip(proba, 1e-9, None))
    bias = np.zeros(proba.shape[1])
    order = np.argsort(np.abs(GRID), kind="stable")  # try small shifts first on ties
    for _ in range(rounds):
        for c in range(proba.shape[1]):
            accs = []
            for g in GRID[order]:
                trial = bias.copy()
                trial[c] = g
                accs.append(((logp + trial).argmax(axis=1) == y).mean())
            bias[c] = GRID[order][int(np.argmax(accs))]
    return bias


def corrected(proba: np.ndarray, bias: np.ndarray) -> np.ndarray:
    q = np.exp(np.log(np.clip(proba, 1e-9, None)) + bias)
    return q / q.sum(axis=1, keepdims=True)


def member_report(cache: Path) -> dict:
    z = np.load(cache, allow_pickle=False)
    bias = fit_class_bias(z["val_proba"], z["val_y"])
    after = corrected(z["test_proba"], bias)
    k = z["test_proba"].shape[1]
    return {
        "bias": np.round(bias, 3).tolist(),
        "test_accuracy": float((z["test_proba"].argmax(1) == z["test_y"]).mean()),
        "test_accuracy_with_bias": float((after.argmax(1) == z["test_y"]).mean()),
        "val_accuracy_with_bias": float((corrected(z["val_proba"], bias).argmax(1) == z["val_y"]).mean()),
        "test_predicted_per_class": np.bincount(z["test_proba"].argmax(1), minlength=k).tolist(),
        "test_predicted_per_class_with_bias": np.bincount(after.argmax(1), minlength=k).tolist(),
        "test_true_per_class": np.bincount(z["test_y"], minlength=k).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a run or results folder with NAME.preds.npz caches")
    p.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    out = {}
    for name in args.names:
        cache = args.run / f"{name}.preds.npz"
        if not cache.exists():
            print(f"error: {cache}: no prediction cache", file=sys.stderr)
            return 1
        out[name] = member_report(cache)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
