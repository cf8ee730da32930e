"""Model registry (timm-style): builders register by name; create_model() validates overrides."""
from __future__ import annotations

import inspect
from typing import Callable

from ..errors import ModelError
from .preprocess import PREPROCESSORS, with_preprocessing

# Input preprocessing every builder accepts (`preprocess=`), checked here and by zoo files.
PREPROCESS_CHOICES = tuple(PREPROCESSORS)

_BUILDERS: dict[str, Callable] = {}
_FAMILIES: dict[str, str] = {}


def register_model(name: str | None = None) -> Callable:
    """Decorator: `@register_model()` registers a builder under its function name (or `name`)."""

    def wrap(fn: Callable) -> Callable:
        key = name or fn.__name__
        if key in _BUILDERS and _BUILDERS[key] is not fn:
            raise ModelError(f"model {key!r} is already registered")
        params = inspect.signature(fn).parameters
        if "input_shape" not in params or "num_classes" not in params:
            raise ModelError(f"builder {key!r} must take input_shape and num_classes")
        _BUILDERS[key] = fn
        _FAMILIES[key] = fn.__module__.rsplit(".", 1)[-1]
        return fn

    return wrap


def list_models(family: str | None = None) -> list[str]:
    """Registered builder names, sorted; `family` filters by module (vgg, resnet, ...)."""
    return sorted(k for k in _BUILDERS if family is None or _FAMILIES[k] == family)


def builder_arguments(name: str) -> dict[str, object]:
    """The builder's tunable arguments (everything but input_shape and num_classes) and defaults,
    plus `preprocess`, which every builder accepts (see `create_model`)."""
    fn = get_builder(name)
    args = {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if k not in ("input_shape", "num_classes")}
    return {**args, "preprocess": None}


def get_builder(name: str) -> Callable:
    if name not in _BUILDERS:
        raise ModelError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return _BUILDERS[name]


def create_model(name: str, input_shape: tuple[int, int, int] = (48, 48, 1), num_classes: int = 7,
                 **overrides):
    """Build the uncompiled keras.Model registered as `name`.

    `preprocess="equalize"` (any builder) puts a histogram-equalization layer in front of the
    network, inside the saved model (see `models.preprocess`)."""
    fn = get_builder(name)
    allowed = builder_arguments(name)
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ModelError(f"model {name!r}: unknown argument(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(allowed))}")
    if num_classes < 2:
        raise ModelError(f"model {name!r}: num_classes must be >= 2, got {num_classes}")
    preprocess = overrides.pop("preprocess", None)
    if preprocess not in (None, *PREPROCESS_CHOICES):
        raise ModelError(f"model {name!r}: unknown preprocess {preprocess!r}; "
                         f"choose from {', '.join(PREPROCESS_CHOICES)}")
    try:
        net = fn(input_shape=tuple(input_shape), num_classes=int(num_classes), **overrides)
    except (TypeError, ValueError) as e:
        raise ModelError(f"model {name!r} could not be built with {overrides}: {e}") from e
    return with_preprocessing(net, preprocess)
