"""Zoo files (`models_zoo/*.toml`): which models the zoo trains and with which settings.

A zoo file has an optional [zoo] table (name, classes), an optional [defaults] table of training
settings, and one [[model]] table per member (name, builder, args, and any training setting).
A member with `init_from` inherits its source's builder and args, with its own `args` laid over
them (a restart on another input view says only `preprocess`; "none" drops the source's). A
member with `like = "NAME"` copies every setting of that earlier entry except its name (another
seed of one recipe restates only `seed`); its own keys override. With both, the architecture is
the warm-start source's and the rest of the recipe the template's, so one restart template
serves every family. Everything is validated on load; errors name the file, the model entry and
the key.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .._io import read_toml
from ..errors import ModelError
from ..rundir import check_name
from .registry import PREPROCESS_CHOICES, builder_arguments, list_models



@dataclass(frozen=True)
class ModelSpec:
    """One zoo member: the builder and its arguments plus the training recipe."""

    name: str
    builder: str
    args: dict = field(default_factory=dict)
    optimizer: str = "adam"            # adam | sgd
    learning_rate: float = 1e-3
    momentum: float = 0.9              # sgd only
    batch_size: int = 64
    epochs: int = 150
    patience: int = 10                 # early stopping on val_loss
    lr_schedule: str = "plateau"       # plateau (ReduceLROnPlateau) | cosine (decay to 0 over `epochs`)
    plateau_patience: int = 10         # ReduceLROnPlateau on val_loss
    plateau_factor: float = 0.5
    min_lr: float = 1e-6
    augment: Any = True                # bool or a table of AugmentConfig keys
    balancing: str = "none"            # none | oversample | batches | class_weights
    oversample_fraction: float = 0.6
    bootstrap: bool = False            # bagging: train on a draw of the Training split with replacement (by seed)
    label_smoothing: float = 0.0
    ferplus_targets: float = 0.0       # weight of the FER+ crowd votes in the training targets (needs --ferplus)
    seed: int = 0
    mixed_precision: bool = False
    steps_per_epoch: int = 0           # 0: one pass over the training set
    init_from: str = ""                # warm start from this earlier member's weights (same builder + args)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return _validated(dict(d), where="spec")

    def replace(self, **kw) -> "ModelSpec":
        return _validated({**self.to_dict(), **kw}, where=f"model {self.name!r}")


@dataclass(frozen=True)
class Zoo:
    name: str
    classes: str
    models: tuple[ModelSpec, ...]
    path: str = ""

    def get(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise ModelError(f"{self.path or self.name}: no model named {name!r}; "
                         f"zoo has {', '.join(m.name for m in self.models)}")


_SPEC_FIELDS = {f.name: f for f in fields(ModelSpec)}
_CHOICES = {"optimizer": ("adam", "sgd"), "lr_schedule": ("plateau", "cosine"), "balancing": ("none", "oversample", "batches", "class_weights")}
_POSITIVE = {"learning_rate", "batch_size", "epochs", "plateau_factor"}
_FRACTIONS = {"label_smoothing", "ferplus_targets"}
_NON_NEGATIVE = {"momentum", "patience", "plateau_patience", "min_lr", "oversample_fraction",
                 "label_smoothing", "seed", "steps_per_epoch"}


def _validated(d: dict, where: str) -> ModelSpec:
    unknown = sorted(set(d) - set(_SPEC_FIELDS))
    if unknown:
        raise ModelError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_SPEC_FIELDS)}")
    for key in ("name", "builder"):
        if not isinstance(d.get(key), str) or not d.get(key):
            raise ModelError(f"{where}: '{key}' must be a non-empty string")
    if d["builder"] not in list_models():
        raise ModelError(f"{where}: unknown builder {d['builder']!r}; registered: {', '.join(list_models())}")
    args = d.get("args", {})
    if not isinstance(args, dict):
        raise ModelError(f"{where}: 'args' must be a table")
    bad_args = sorted(set(args) - set(builder_arguments(d["builder"])))
    if bad_args:
        raise ModelError(f"{where}: builder {d['builder']!r} has no argument(s) {', '.join(bad_args)}; "
                         f"it takes {', '.join(builder_arguments(d['builder']))}")
    if args.get("preprocess") == "none":  # TOML has no null: how a restart drops its source's view
        args = {k: v for k, v in args.items() if k != "preprocess"}
    if args.get("preprocess") not in (None, *PREPROCESS_CHOICES):
        raise ModelError(f"{where}: args.preprocess must be 'none' or one of {', '.join(PREPROCESS_CHOICES)}, "
                         f"got {args['preprocess']!r}")
    d["args"] = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    for key, value in d.items():
        if key in ("name", "builder", "args", "augment"):
            continue
        f = _SPEC_FIELDS[key]
        expected = {"int": int, "float": (int, float), "bool": bool, "str": str}[str(f.type)]
        if isinstance(value, bool) and f.type != "bool" or not isinstance(value, expected):
            raise ModelError(f"{where}: '{key}' must be {f.type}, got {value!r}")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ModelError(f"{where}: '{key}' must be one of {_CHOICES[key]}, got {value!r}")
        if key in _POSITIVE and value <= 0 or key in _NON_NEGATIVE and value < 0:
            raise ModelError(f"{where}: '{key}' must be {'positive' if key in _POSITIVE else '>= 0'}, got {value!r}")
        if key in _FRACTIONS and not 0 <= value <= 1:
            raise ModelError(f"{where}: '{key}' must be between 0 and 1, got {value!r}")
    if "augment" in d:
        from ..data.augment import AugmentConfig

        try:
            AugmentConfig.from_dict(d["augment"])
        except (TypeError, ValueError) as e:
            raise ModelError(f"{where}: bad 'augment': {e}") from None
    return ModelSpec(**d)


def load_zoo(path: str | os.PathLike) -> Zoo:
    """Read and validate a zoo file."""
    raw = read_toml(path, "zoo file", ModelError)
    return zoo_from_dict(raw, str(path))


def zoo_from_dict(raw: dict, path: str = "zoo") -> Zoo:
    """Validate a parsed zoo document ([zoo], [defaults], [[model]]); errors name `path`."""
    unknown = sorted(set(raw) - {"zoo", "defaults", "model"})
    if unknown:
        raise ModelError(f"{path}: unknown top-level table(s) {', '.join(unknown)}; expected zoo, defaults, model")
    meta = raw.get("zoo", {})
    bad = sorted(set(meta) - {"name", "classes", "description"})
    if bad:
        raise ModelError(f"{path}: [zoo] has unknown key(s) {', '.join(bad)}")
    classes = meta.get("classes", "fer7")
    if classes not in ("fer7", "fer6"):
        raise ModelError(f"{path}: [zoo] classes must be 'fer7' or 'fer6', got {classes!r}")
    defaults = raw.get("defaults", {})
    entries = raw.get("model", [])
    if not entries:
        raise ModelError(f"{path}: no [[model]] entries")
    models, seen = [], set()
    for i, entry in enumerate(entries):
        label = entry.get("name", f"#{i + 1}")
        template = _earlier(entry, "like", models, f"{path}: model {label!r}")
        base = {k: v for k, v in template.to_dict().items() if k != "name"} if template else {}
        merged = {**defaults, **base, **{k: v for k, v in entry.items() if k != "like"}}
        source = _earlier(merged, "init_from", models, f"{path}: model {label!r}")
        if source is not None:
            # A warm start needs its source's architecture, so it is inherited, over [defaults] and
            # over a `like` template (which then lends only its recipe). The entry's own `args` are
            # laid over the source's: a restart on another view says only `preprocess`.
            merged["builder"] = entry.get("builder", source.builder)
            entry_args = entry.get("args", {})
            merged["args"] = {**source.args, **entry_args} if isinstance(entry_args, dict) else entry_args
        spec = _validated(merged, where=f"{path}: model {label!r}")
        check_name(spec.name, f"{path}: model {spec.name!r}", ModelError)  # names become file names
        if spec.name in seen:
            raise ModelError(f"{path}: model {spec.name!r} appears twice")
        if source is not None and _architecture(source) != _architecture(spec):
            raise ModelError(f"{path}: model {spec.name!r}: init_from {spec.init_from!r} has a different builder or "
                             "args; a warm start needs the same architecture (leave them out to inherit them; "
                             "only 'preprocess', which has no weights, may differ)")
        seen.add(spec.name)
        models.append(spec)
    return Zoo(name=meta.get("name", Path(path).stem), classes=classes, models=tuple(models), path=str(path))


def _architecture(spec: ModelSpec) -> tuple:
    """What a warm start must share with its source: the builder and its args except the input
    preprocessing, a weightless layer in front of the network (a restart may change the view)."""
    return spec.builder, {k: v for k, v in spec.args.items() if k != "preprocess"}


def _earlier(entry: dict, key: str, earlier: list[ModelSpec], where: str) -> ModelSpec | None:
    """The earlier member that `key` names: `init_from` (a warm start copies weights layer by layer,
    so its source is trained first) or `like` (a recipe template). None when the key is absent."""
    name = entry.get(key, "")
    if key == "like" and not isinstance(name, str):
        raise ModelError(f"{where}: 'like' must name an earlier [[model]] entry, got {name!r}")
    if not name or not isinstance(name, str):
        return None  # absent, or a wrong init_from type that _validated reports
    source = next((m for m in earlier if m.name == name), None)
    if source is None:
        raise ModelError(f"{where}: {key} {name!r} must name an earlier [[model]] entry; "
                         f"earlier: {', '.join(m.name for m in earlier) or 'none'}")
    return source
