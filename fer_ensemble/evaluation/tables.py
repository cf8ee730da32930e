"""Per-class and summary metric tables (scikit-learn), as DataFrames and as Markdown."""
from __future__ import annotations

import numpy as np
import pandas as pd


def per_class_table(y: np.ndarray, proba: np.ndarray, class_names) -> pd.DataFrame:
    """One row per class: accuracy (the study's per-class accuracy, i.e. recall), precision,
    recall, F1 and support; then rows for macro and weighted averages and overall accuracy."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    labels = np.arange(len(class_names))
    pred = np.asarray(proba).argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    rows = [{"class": c, "accuracy": r[i], "precision": p[i], "recall": r[i], "f1": f[i], "support": int(s[i])}
            for i, c in enumerate(class_names)]
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        rows.append({"class": f"{avg} avg", "accuracy": np.nan, "precision": ap, "recall": ar, "f1": af,
                     "support": int(len(y))})
    rows.append({"class": "accuracy", "accuracy": accuracy_score(y, pred), "precision": np.nan, "recall": np.nan,
                 "f1": np.nan, "support": int(len(y))})
    return pd.DataFrame(rows)


def comparison_table(named_proba: dict[str, np.ndarray], y: np.ndarray, class_names) -> pd.DataFrame:
    """Per-class accuracy (%) of several models side by side, with overall accuracy and macro F1
    (the layout of the reference study's Tables 2-5)."""
    from sklearn.metrics import f1_score

    rows = []
    for name, proba in named_proba.items():
        pred = np.asarray(proba).argmax(axis=1)
        row = {"model": name}
        for i, c in enumerate(class_names):
            mask = y == i
            row[c] = 100 * float((pred[mask] == i).mean()) if mask.any() else np.nan
        row["accuracy"] = 100 * float((pred == y).mean())
        row["macro F1"] = 100 * float(f1_score(y, pred, labels=np.arange(len(class_names)), average="macro",
                                               zero_division=0))
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub Markdown table (no extra dependency); NaN shows as an empty cell."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def disagreement_matrix(named_proba: dict[str, np.ndarray]) -> pd.DataFrame:
    """Percentage of images on which each two models predict different classes (symmetric, zero
    diagonal): averaging gains only where members disagree."""
    names = list(named_proba)
    pred = np.stack([np.asarray(named_proba[n]).argmax(axis=1) for n in names])
    d = 100 * (pred[:, None, :] != pred[None, :, :]).mean(axis=2)
    return pd.DataFrame(d, index=pd.Index(names, name="model"), columns=names)


def pair_table(named_proba: dict[str, np.ndarray], y: np.ndarray) -> pd.DataFrame:
    """One row per unordered pair of models: disagreement (%), both wrong (%), accuracy (%) of
    their mean probabilities, and its gain over the better of the two (points)."""
    names = list(named_proba)
    proba = [np.asarray(named_proba[n]) for n in names]
    pred = [p.argmax(axis=1) for p in proba]
    right = [p == y for p in pred]
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            pair = 100 * float((((proba[i] + proba[j]) / 2).argmax(axis=1) == y).mean())
            rows.append({"model a": names[i], "model b": names[j],
                         "disagreement": 100 * float((pred[i] != pred[j]).mean()),
                         "both wrong": 100 * float((~right[i] & ~right[j]).mean()),
                         "pair accuracy": pair,
                         "gain": pair - 100 * max(float(right[i].mean()), float(right[j].mean()))})
    return pd.DataFrame(rows, columns=["model a", "model b", "disagreement", "both wrong", "pair accuracy", "gain"])

