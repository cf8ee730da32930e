"""ImageNet backbones from keras.applications adapted to 48×48 grayscale faces.

The grey channel is repeated to three with a Concatenate layer (no Lambda: models stay loadable in
safe mode), the image is resized where asked, and a new dense head is added.
"""
from __future__ import annotations

from keras import layers

from ..errors import ModelError
from .layers import classifier, dense_stack, model
from .registry import register_model

# name -> (keras.applications constructor name, input rescaling from [0, 1] as (scale, offset))
_BACKBONES = {
    "vgg16": ("VGG16", (255.0, -117.0)),
    "resnet50": ("ResNet50", (255.0, -117.0)),
    "mobilenetv2": ("MobileNetV2", (2.0, -1.0)),
    "efficientnetb0": ("EfficientNetB0", (255.0, 0.0)),
}


def _transfer(key, input_shape, num_classes, weights, resize, freeze, dense_units, dropout):
    import keras

    ctor_name, (scale, offset) = _BACKBONES[key]
    ctor = getattr(keras.applications, ctor_name)
    side = resize or input_shape[0]
    if side < 32:
        raise ModelError(f"{key}: input side must be >= 32 (got {side}); set resize")
    inputs = layers.Input(input_shape, name="image")
    x = inputs
    if resize and resize != input_shape[0]:
        x = layers.Resizing(resize, resize, name="resize")(x)
    if input_shape[-1] == 1:
        x = layers.Concatenate(name="to_rgb")([x, x, x])
    x = layers.Rescaling(scale, offset, name="backbone_scaling")(x)
    try:
        backbone = ctor(include_top=False, weights=weights, input_shape=(side, side, 3), pooling="avg")
    except Exception as e:  # network errors surface as many types (URLError, OSError, ...)
        if weights is None:
            raise
        raise ModelError(f"{key}: could not load weights={weights!r} ({e.__class__.__name__}: {e}). "
                         "Use weights=None to train from scratch, or put the weight file in "
                         "~/.keras/models/ on a machine without internet access.") from None
    backbone.trainable = not freeze
    x = backbone(x)
    x = dense_stack(x, tuple(dense_units), dropout, prefix="head")
    return model(inputs, classifier(x, num_classes), f"transfer_{key}")


def unfreeze_top(net, n_layers: int) -> int:
    """Make the last `n_layers` layers of the backbone trainable, for a fine-tuning stage after
    training the head on a frozen backbone (recompile afterwards). BatchNorm layers stay frozen,
    as is usual when fine-tuning. Returns how many layers became trainable."""
    import keras

    backbone = next(l for l in net.layers if isinstance(l, keras.Model))
    backbone.trainable = True
    cut = len(backbone.layers) - n_layers
    changed = 0
    for i, layer in enumerate(backbone.layers):
        layer.trainable = i >= cut and not isinstance(layer, layers.BatchNormalization)
        changed += layer.trainable
    return changed


def _make(key):
    def builder(input_shape=(48, 48, 1), num_classes=7, *, weights=None, resize=None, freeze=False,
                dense_units=(256,), dropout=0.5):
        return _transfer(key, input_shape, num_classes, weights, resize, freeze, dense_units, dropout)

    builder.__name__ = f"transfer_{key}"
    builder.__doc__ = f"keras.applications.{_BACKBONES[key][0]} backbone with a new dense head."
    builder.__module__ = __name__
    return register_model(f"transfer_{key}")(builder)


for _key in _BACKBONES:
    _make(_key)
