"""Augmentation as Keras preprocessing layers, applied to whole batches: inside a tf.data pipeline
under TensorFlow, inside the training model (on the device) under other backends."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .. import _tf  # noqa: F401  (quiet TF before keras is imported)


@dataclass(frozen=True)
class AugmentConfig:
    """All knobs of the augmentation; zero/False turns a transform off."""

    flip: bool = True
    rotation: float = 20.0       # degrees, ±
    translation: float = 0.10    # fraction of the side, ±
    zoom: float = 0.10           # fraction, ±
    erasing: float = 0.0         # per-image probability of random erasing (0 = off)
    contrast: float = 0.0        # ± contrast factor (0 = off)

    @classmethod
    def from_dict(cls, d: dict | bool | None) -> "AugmentConfig | None":
        if d is None or d is False:
            return None
        if d is True:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown augmentation key(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def build_augmenter(cfg: AugmentConfig, seed: int | None = None, dtype: str = "float32"):
    """A keras.Sequential of preprocessing layers for (B, H, W, 1) float images in [0, 1], computing
    in `dtype` whatever the global policy (under a mixed one, float16 would round every pixel)."""
    import keras

    kw = {"seed": seed, "dtype": dtype}
    layers = []
    if cfg.flip:
        layers.append(keras.layers.RandomFlip("horizontal", **kw))
    if cfg.rotation:
        layers.append(keras.layers.RandomRotation(cfg.rotation / 360.0, fill_mode="nearest", **kw))
    if cfg.translation:
        layers.append(keras.layers.RandomTranslation(cfg.translation, cfg.translation, fill_mode="nearest", **kw))
    if cfg.zoom:
        layers.append(keras.layers.RandomZoom(cfg.zoom, cfg.zoom, fill_mode="nearest", **kw))
    if cfg.contrast:
        layers.append(keras.layers.RandomContrast(cfg.contrast, value_range=(0, 1), **kw))
    if cfg.erasing:
        # A single float `factor` draws each image's probability from [0, factor], which would erase
        # only half as often as asked; (p, p) makes `erasing` the probability itself.
        layers.append(keras.layers.RandomErasing(factor=(cfg.erasing, cfg.erasing), scale=(0.02, 0.2),
                                                 value_range=(0, 1), **kw))
    if not layers:
        # Every knob off is a valid config, but an empty Sequential cannot be called.
        layers.append(keras.layers.Identity(dtype=dtype))
    if keras.backend.backend() == "jax":
        # Rotation, translation and zoom opt out of XLA for TensorFlow's sake
        # (ImageProjectiveTransform); their JAX implementation (map_coordinates) compiles, and a
        # model with a non-jittable layer makes a JAX train step run op by op.
        for layer in layers:
            layer.supports_jit = True
    augmenter = keras.Sequential(layers, name="augment")
    # Sequential takes no `dtype`; left on a mixed policy it would autocast its input to float16
    # before its layers see it.
    augmenter.dtype_policy = keras.DTypePolicy(dtype)
    return augmenter


def seed_generators(layer) -> list:
    """The random-state generators (keras.random.SeedGenerator) of `layer` and the layers inside it."""
    seen, out = set(), []
    for sub in layer._flatten_layers(include_self=True, recursive=True):   # Keras tracks them per layer
        for gen in getattr(sub, "_seed_generators", []):
            if id(gen) not in seen:
                seen.add(id(gen))
                out.append(gen)
    return out


def advance_random_state(augmenter, calls: int, sample) -> None:
    """Leave `augmenter`'s random state where `calls` training calls would have left it, so that a
    run resumed after `calls` batches draws the augmentations an uninterrupted run draws there.
    Each call advances every generator by a fixed step, measured here on `sample` (one image)."""
    import keras

    gens = seed_generators(augmenter)
    if not gens or not calls:
        return
    before = [keras.ops.convert_to_numpy(g.state.value) for g in gens]
    augmenter(sample, training=True)
    for gen, start in zip(gens, before):
        step = keras.ops.convert_to_numpy(gen.state.value) - start
        gen.state.assign(start + step * calls)
