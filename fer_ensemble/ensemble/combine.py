"""Combination methods over member probabilities (M, N, C). Pure numpy; weights come from the
validation split only.

mean      plain average (weighted by multiplicity when greedy selection repeats a member)
accuracy  members weighted by validation accuracy
recall    per-class weights: member m's validation recall of class c, normalised over members
          for each class (the reference study's best, "ensemble9_3")
vote      majority of argmax; ties broken by mean probability
geometric mean log-probability (normalised geometric mean)
stacking  multinomial logistic regression on the concatenated member probabilities
"""
from __future__ import annotations

import numpy as np

METHODS = ("mean", "accuracy", "recall", "vote", "geometric", "stacking")
SEARCHABLE = ("mean", "accuracy", "recall", "vote", "geometric")
_EPS = 1e-7


def member_accuracy(val_proba: np.ndarray, val_y: np.ndarray) -> np.ndarray:
    """(M,) validation accuracy of each member."""
    return (val_proba.argmax(axis=2) == val_y[None]).mean(axis=1)


def member_recall(val_proba: np.ndarray, val_y: np.ndarray, num_classes: int) -> np.ndarray:
    """(M, C) validation recall of each member for each class (0 for classes absent from val)."""
    pred = val_proba.argmax(axis=2)
    out = np.zeros((val_proba.shape[0], num_classes))
    for c in range(num_classes):
        sel = val_y == c
        if sel.any():
            out[:, c] = (pred[:, sel] == c).mean(axis=1)
    return out


def fit_weights(method: str, val_proba: np.ndarray, val_y: np.ndarray) -> np.ndarray | None:
    """Weights for `method` from validation predictions: (M,) for accuracy, (M, C) for recall."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if method == "accuracy":
        return member_accuracy(val_proba, val_y)
    if method == "recall":
        return member_recall(val_proba, val_y, val_proba.shape[2])
    return None


def combine(proba: np.ndarray, method: str, weights: np.ndarray | None = None) -> np.ndarray:
    """(M, N, C) member probabilities -> (N, C) ensemble probabilities (rows sum to 1)."""
    proba = np.asarray(proba, dtype=np.float64)
    if method == "mean" and weights is None:
        out = proba.mean(axis=0)
    elif method in ("mean", "accuracy"):   # mean with weights: multiplicities from greedy selection
        w = np.asarray(weights, dtype=np.float64)
        out = np.tensordot(w / w.sum(), proba, axes=1)
    elif method == "recall":
        w = np.asarray(weights, dtype=np.float64)               # (M, C)
        w = w / np.maximum(w.sum(axis=0, keepdims=True), _EPS)   # normalised over members per class
        out = (proba * w[:, None, :]).sum(axis=0)
        out = out / out.sum(axis=1, keepdims=True)
    elif method == "vote":
        votes = np.eye(proba.shape[2])[proba.argmax(axis=2)].sum(axis=0)
        out = votes + 0.5 * proba.mean(axis=0)                  # tie-break below one vote
        out = out / out.sum(axis=1, keepdims=True)
    elif method == "geometric":
        logp = np.log(np.clip(proba, _EPS, 1.0)).mean(axis=0)
        out = np.exp(logp - logp.max(axis=1, keepdims=True))
        out = out / out.sum(axis=1, keepdims=True)
    else:
        raise ValueError(f"combine() does not handle {method!r}; use Stacker for stacking")
    return out


class Stacker:
    """Multinomial logistic regression on concatenated member probabilities (scikit-learn)."""

    def __init__(self, C: float = 1.0, seed: int = 0):
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=C, max_iter=1000, random_state=seed)

    @staticmethod
    def features(proba: np.ndarray) -> np.ndarray:
        # Probabilities, not log-probabilities: bounded features keep lbfgs fast (log features
        # reaching -16 made each fit take seconds on a few hundred rows).
        return proba.transpose(1, 0, 2).reshape(proba.shape[1], -1)

    def cross_val_accuracy(self, val_proba: np.ndarray, val_y: np.ndarray, folds: int = 5) -> float:
        """Validation accuracy from out-of-fold predictions: never scored on what it fit."""
        from sklearn.base import clone
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        counts = np.bincount(val_y)
        k = int(max(2, min(folds, counts[counts > 0].min())))
        cv = StratifiedKFold(k, shuffle=True, random_state=0)
        pred = cross_val_predict(clone(self.model), self.features(val_proba), val_y, cv=cv)
        return float((pred == val_y).mean())

    def fit(self, val_proba: np.ndarray, val_y: np.ndarray) -> "Stacker":
        self.model.fit(self.features(val_proba), val_y)
        return self

    def predict_proba(self, proba: np.ndarray) -> np.ndarray:
        p = self.model.predict_proba(self.features(proba))
        full = np.zeros((p.shape[0], proba.shape[2]))
        full[:, self.model.classes_] = p
        return full

    def params(self) -> dict:
        return {"coef": self.model.coef_.tolist(), "intercept": self.model.intercept_.tolist(),
                "classes": self.model.classes_.tolist()}

    @classmethod
    def from_params(cls, params: dict) -> "Stacker":
        """A fitted stacker from `params()` (as stored in ensemble.json)."""
        st = cls()
        st.model.coef_ = np.array(params["coef"])
        st.model.intercept_ = np.array(params["intercept"])
        st.model.classes_ = np.array(params["classes"])
        return st
