"""Combining member probabilities: the public names of `methods`, where each combination method
is registered (its weights, combination, search contributions and fused-model layer)."""
from .methods import (_EPS, DEFAULT_METHODS, METHODS, SEARCHABLE, STACKING, CombinationMethod, Stacker,  # noqa: F401
                      combine, fit_weights, get_method, member_accuracy, member_recall)

__all__ = ["METHODS", "SEARCHABLE", "STACKING", "DEFAULT_METHODS", "CombinationMethod", "Stacker", "combine",
           "fit_weights", "get_method", "member_accuracy", "member_recall"]
