"""Report figures with matplotlib's non-interactive Agg backend; every figure is written to a
temporary name and renamed, and closed after saving."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def confusion_matrix_plot(y: np.ndarray, proba: np.ndarray, class_names, path, title: str,
                          normalize: bool = False) -> Path:
    """Counts, or rows normalised to the fraction of each true class, with a colour bar."""
    from sklearn.metrics import confusion_matrix

    plt = _plt()
    cm = confusion_matrix(y, np.asarray(proba).argmax(axis=1), labels=np.arange(len(class_names)))
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 * n + 2, 1.0 * n + 1))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(1, cm.max()))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class" if normalize else "images")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = shown.max() if shown.size else 1
    for i in range(n):
        for j in range(n):
            text = f"{shown[i, j]:.2f}" if normalize else f"{cm[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if shown[i, j] > 0.6 * top else "black")
    return _save(fig, path)


def learning_curves(history: pd.DataFrame, path, title: str) -> Path:
    """Loss, accuracy (training and validation) and learning rate per epoch."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    for ax, metric in zip(axes[:2], ("loss", "accuracy")):
        for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
            if key in history:
                ax.plot(epochs, history[key], marker="o", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if "learning_rate" in history:
        axes[2].plot(epochs, history["learning_rate"], marker="o", ms=3, color="tab:green")
        if (history["learning_rate"] > 0).all():
            axes[2].set_yscale("log")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("learning rate")
    axes[2].set_title("learning rate")
    axes[2].grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title, y=1.03)
    return _save(fig, path)


def class_distribution(counts: pd.DataFrame, path, title: str) -> Path:
    """Grouped bars: one group per class, one bar per column of `counts` (split / balancing)."""
    plt = _plt()
    n, k = counts.shape
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * n), 4))
    width = 0.8 / k
    for j, col in enumerate(counts.columns):
        ax.bar(np.arange(n) + (j - (k - 1) / 2) * width, counts[col].to_numpy(), width, label=col)
    ax.set_xticks(range(n), counts.index, rotation=30, ha="right")
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(fig, path)


def disagreement_heatmap(matrix: pd.DataFrame, path, title: str) -> Path:
    """A square matrix of pairwise disagreement (%) between models, with the values written in."""
    plt = _plt()
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(0.6 * n + 3, 0.6 * n + 2))
    im = ax.imshow(matrix.to_numpy(), cmap="viridis", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of images predicted differently")
    ax.set_xticks(range(n), matrix.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), matrix.index, fontsize=8)
    ax.set_title(title)
    top = float(matrix.to_numpy().max()) or 1.0
    for i in range(n):
        for j in range(n):
            v = matrix.iat[i, j]
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="black" if v > 0.6 * top else "white")
    return _save(fig, path)


def roc_curves(y: np.ndarray, proba: np.ndarray, class_names, path, title: str) -> tuple[Path, dict]:
    """One-vs-rest ROC per class with its AUC, and the macro AUC; returns (path, AUCs)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    aucs = {}
    for i, c in enumerate(class_names):
        truth = (y == i).astype(int)
        if truth.min() == truth.max():
            continue  # a class absent from (or alone in) the split has no ROC
        fpr, tpr, _ = roc_curve(truth, proba[:, i])
        aucs[c] = float(roc_auc_score(truth, proba[:, i]))
        ax.plot(fpr, tpr, label=f"{c} (AUC {aucs[c]:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    aucs["macro"] = float(np.mean(list(aucs.values()))) if aucs else float("nan")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"{title} (macro AUC {aucs['macro']:.3f})")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path), aucs


def image_grid(images: np.ndarray, y: np.ndarray, proba: np.ndarray, class_names, path, title: str,
               n: int = 24, cols: int = 8) -> Path:
    """Test images with true and predicted labels: mistakes first (most confident first, at most
    two thirds of the grid), then correct ones; mistakes are titled in red."""
    plt = _plt()
    pred = proba.argmax(axis=1)
    conf = proba.max(axis=1)
    wrong = np.flatnonzero(pred != y)
    right = np.flatnonzero(pred == y)
    # two thirds mistakes (most confident first), the rest correct ones, so both kinds are seen
    n_wrong = min(len(wrong), max(n - len(right), (2 * n) // 3))
    order = np.concatenate([wrong[np.argsort(-conf[wrong])][:n_wrong], right[np.argsort(-conf[right])]])[:n]
    rows = max(1, int(np.ceil(len(order) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), order):
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
        ok = pred[i] == y[i]
        ax.set_title(f"true {class_names[y[i]]}\npred {class_names[pred[i]]} {conf[i]:.0%}", fontsize=7,
                     color="black" if ok else "red")
    fig.suptitle(title)
    return _save(fig, path)


def gradcam_grid(images: np.ndarray, heatmaps: np.ndarray, titles: list[str], path, title: str,
                 cols: int = 6) -> Path:
    """Faces with their Grad-CAM heatmaps blended over them, with a colour bar for the heat."""
    from .gradcam import overlay

    plt = _plt()
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols + 1, 2.1 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, heat, t in zip(axes.ravel(), images, heatmaps, titles):
        ax.imshow(overlay(img, heat))
        ax.set_title(t, fontsize=7)
    sm = plt.cm.ScalarMappable(cmap="jet", norm=plt.Normalize(0, 1))
    fig.colorbar(sm, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01, label="Grad-CAM (relative)")
    fig.suptitle(title)
    return _save(fig, path)
