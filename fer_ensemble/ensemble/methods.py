"""Combination methods, registered the way models are: one entry per method says how its weights
are fitted (validation split only), how it combines member probabilities (M, N, C) -> (N, C), its
additive per-member contributions for the subset search, how greedy selection's repeated picks
fold into its stored weights, and its layer in the fused Keras model. Pure numpy.

mean      plain average (weighted by multiplicity when greedy selection repeats a member)
accuracy  members weighted by validation accuracy
recall    per-class weights: member m's validation recall of class c, normalised over members
          for each class (the reference study's best, "ensemble9_3")
vote      majority of argmax; ties broken by mean probability
geometric mean log-probability (normalised geometric mean)
stacking  multinomial logistic regression on the concatenated member probabilities
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

_EPS = 1e-7
STACKING = "stacking"
DEFAULT_METHODS = ("mean", "accuracy", "recall")   # what the search ranks unless told otherwise


# ---------------------------------------------------------------- weights from the validation split
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


def _fit_recall(val_proba: np.ndarray, val_y: np.ndarray) -> np.ndarray:
    return member_recall(val_proba, val_y, val_proba.shape[2])


# ---------------------------------------------------------------- combination (float64 input)
def _mean(proba: np.ndarray, weights) -> np.ndarray:
    if weights is None:
        return proba.mean(axis=0)
    return _weighted(proba, weights)   # weights: multiplicities from greedy selection


def _weighted(proba: np.ndarray, weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return np.tensordot(w / w.sum(), proba, axes=1)


def _recall(proba: np.ndarray, weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)               # (M, C)
    w = w / np.maximum(w.sum(axis=0, keepdims=True), _EPS)   # normalised over members per class
    out = (proba * w[:, None, :]).sum(axis=0)
    return out / out.sum(axis=1, keepdims=True)


def _vote(proba: np.ndarray, weights) -> np.ndarray:
    votes = np.eye(proba.shape[2])[proba.argmax(axis=2)].sum(axis=0)
    out = votes + 0.5 * proba.mean(axis=0)                  # tie-break below one vote
    return out / out.sum(axis=1, keepdims=True)


def _geometric(proba: np.ndarray, weights) -> np.ndarray:
    logp = np.log(np.clip(proba, _EPS, 1.0)).mean(axis=0)
    out = np.exp(logp - logp.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- the search's additive contributions
# (proba (M, N, C) in the search's dtype, val_proba, val_y) -> (contributions (M, N, C), denominators
# (M, C) or None): a subset's class scores are the sum of its members' contributions (over the sum
# of their denominators, for recall). Weights always come from the validation predictions.
def _contrib_mean(proba, val_proba, val_y):
    return proba, None


def _contrib_accuracy(proba, val_proba, val_y):
    return member_accuracy(val_proba, val_y)[:, None, None] * proba, None


def _contrib_recall(proba, val_proba, val_y):
    r = member_recall(val_proba, val_y, proba.shape[2])
    return r[:, None, :] * proba, r


def _contrib_vote(proba, val_proba, val_y):
    onehot = np.eye(proba.shape[2], dtype=proba.dtype)[proba.argmax(axis=2)]
    return onehot + proba / (2 * proba.shape[0]), None


def _contrib_geometric(proba, val_proba, val_y):
    return np.log(np.clip(proba, _EPS, 1.0)), None


# ---------------------------------------------------------------- the fused model's (M, C) weights
def _uniform(weights, m: int, c: int) -> np.ndarray:
    return np.full((m, c), 1.0 / m)


def _per_member(weights, m: int, c: int) -> np.ndarray:
    if weights is None:   # mean without multiplicities
        return _uniform(weights, m, c)
    return np.repeat((weights / weights.sum())[:, None], c, axis=1)


def _per_class(weights, m: int, c: int) -> np.ndarray:
    return weights / np.maximum(weights.sum(axis=0, keepdims=True), 1e-7)


@dataclass(frozen=True)
class CombinationMethod:
    """How one method fits, combines, is searched, stores repeats and is fused."""

    name: str
    combine: Callable | None          # (float64 proba (M, N, C), weights) -> (N, C); None: a fitted model
    fit: Callable | None = None       # (val_proba, val_y) -> weights; None: the method takes no weights
    contributions: Callable | None = None   # the search's additive terms; None: not searchable
    weights: str | None = None        # stored weights: "member" (M,), "class" (M, C), None
    needs_weights: bool = False       # cannot combine before weights are fitted
    normalised: bool = False          # scores are divided by a per-class sum of member weights
    repeats: str | None = None        # greedy repeats in stored weights: "counts" (the weights are the
    #                                   multiplicities), "scale" (fitted weights times counts), None: refused
    layer: str | None = None          # `layers.CombineMembers` mode in the fused model; None: no fused model
    fused_weights: Callable | None = None   # (weights, M, C) -> (M, C) weights of the fused layer

    @property
    def stacked(self) -> bool:
        """Combined by a model fitted on the validation split (its parameters stored), not by weights."""
        return self.combine is None

    @property
    def searchable(self) -> bool:
        return self.contributions is not None

    def predict(self, proba: np.ndarray, weights=None, stacking: dict | None = None) -> np.ndarray:
        """(M, N, C) member probabilities -> (N, C), from stored weights or stacking parameters."""
        if self.stacked:
            return Stacker.from_params(stacking).predict_proba(proba)
        return combine(proba, self.name, weights)

    def fit_predict(self, val_proba: np.ndarray, val_y: np.ndarray, proba: np.ndarray) -> np.ndarray:
        """Fit on the members' validation predictions, then combine `proba`."""
        if self.stacked:
            return Stacker().fit(val_proba, val_y).predict_proba(proba)
        return combine(proba, self.name, fit_weights(self.name, val_proba, val_y))


_REGISTRY: dict[str, CombinationMethod] = {}


def _register(method: CombinationMethod) -> CombinationMethod:
    """Add a combination method; the order of registration is the order of METHODS."""
    if method.name in _REGISTRY:
        raise ValueError(f"combination method {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return method


def lookup(name) -> CombinationMethod | None:
    """The registered method called `name`; None for an unknown name (or a non-string from a file)."""
    return _REGISTRY.get(name) if isinstance(name, str) else None


def get_method(name: str) -> CombinationMethod:
    method = lookup(name)
    if method is None:
        raise ValueError(f"unknown method {name!r}; expected one of {METHODS}")
    return method


def is_stacked(name: str) -> bool:
    method = lookup(name)
    return method is not None and method.stacked


def subset_methods(methods: Iterable[str]) -> list[str]:
    """`methods` without the stacked ones (fitted, not searched over subsets); unknown names stay,
    for the search to refuse."""
    return [m for m in methods if not is_stacked(m)]


for _m in (
    CombinationMethod("mean", _mean, contributions=_contrib_mean, weights="member", repeats="counts",
                      layer="weighted", fused_weights=_per_member),
    CombinationMethod("accuracy", _weighted, fit=member_accuracy, contributions=_contrib_accuracy, weights="member",
                      needs_weights=True, repeats="scale", layer="weighted", fused_weights=_per_member),
    CombinationMethod("recall", _recall, fit=_fit_recall, contributions=_contrib_recall, weights="class",
                      needs_weights=True, normalised=True, repeats="scale", layer="weighted",
                      fused_weights=_per_class),
    CombinationMethod("vote", _vote, contributions=_contrib_vote, layer="vote", fused_weights=_uniform),
    CombinationMethod("geometric", _geometric, contributions=_contrib_geometric, layer="geometric",
                      fused_weights=_uniform),
    CombinationMethod(STACKING, None),
):
    _register(_m)

METHODS = tuple(_REGISTRY)
SEARCHABLE = tuple(n for n, m in _REGISTRY.items() if m.searchable)


def fit_weights(method: str, val_proba: np.ndarray, val_y: np.ndarray) -> np.ndarray | None:
    """Weights for `method` from validation predictions: (M,) for accuracy, (M, C) for recall."""
    spec = lookup(method)
    if spec is None:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    return None if spec.fit is None else spec.fit(val_proba, val_y)


def combine(proba: np.ndarray, method: str, weights: np.ndarray | None = None) -> np.ndarray:
    """(M, N, C) member probabilities -> (N, C) ensemble probabilities (rows sum to 1)."""
    proba = np.asarray(proba, dtype=np.float64)
    spec = lookup(method)
    if spec is None or spec.stacked:
        raise ValueError(f"combine() does not handle {method!r}; use Stacker for stacking")
    return spec.combine(proba, weights)


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
