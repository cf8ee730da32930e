"""Classification metrics from labels and probabilities (scikit-learn), as stored in NAME.json.

A base module: training writes these metrics into sidecars and the ensemble recomputes them
(test-time augmentation, imported models), so neither layer owns them."""
from __future__ import annotations

import numpy as np


def classification_metrics(y: np.ndarray, proba: np.ndarray, class_names) -> dict:
    """Accuracy, per-class accuracy (= recall), precision, recall, F1 and the confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = np.arange(len(class_names))
    pred = np.argmax(proba, axis=1)
    cm = confusion_matrix(y, pred, labels=labels)
    p, r, f, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    macro = precision_recall_fscore_support(y, pred, labels=labels, average="macro", zero_division=0)
    weighted = precision_recall_fscore_support(y, pred, labels=labels, average="weighted", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "per_class_accuracy": dict(zip(class_names, map(float, r))),
        "precision": dict(zip(class_names, map(float, p))),
        "recall": dict(zip(class_names, map(float, r))),
        "f1": dict(zip(class_names, map(float, f))),
        "support": dict(zip(class_names, map(int, support))),
        "macro": {"precision": float(macro[0]), "recall": float(macro[1]), "f1": float(macro[2])},
        "weighted": {"precision": float(weighted[0]), "recall": float(weighted[1]), "f1": float(weighted[2])},
        "confusion_matrix": cm.tolist(),
    }
