"""Inception builder (section 4.2): GoogLeNet-style blocks, no initial pooling for 48×48 faces."""
from __future__ import annotations

from keras import layers

from .layers import classifier, conv, model
from .registry import register_model


def inception_block(x, n: int, name: str, l2: float):
    """Branches 1×1 (¾n); 1×1→3×3 (½n); 1×1→5×5 (⅛n); 5×5 (¼n); pool→1×1 (¼n), concatenated."""
    q = lambda frac: max(1, int(round(n * frac)))  # noqa: E731
    b1 = conv(x, q(3 / 4), f"{name}_1x1", kernel=1, l2=l2)
    b2 = conv(conv(x, q(1 / 2), f"{name}_3x3r", kernel=1, l2=l2), q(1 / 2), f"{name}_3x3", kernel=3, l2=l2)
    b3 = conv(conv(x, q(1 / 8), f"{name}_5x5r", kernel=1, l2=l2), q(1 / 8), f"{name}_5x5", kernel=5, l2=l2)
    b4 = conv(x, q(1 / 4), f"{name}_5x5d", kernel=5, l2=l2)
    b5 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    b5 = conv(b5, q(1 / 4), f"{name}_poolproj", kernel=1, l2=l2)
    return layers.Concatenate(name=f"{name}_concat")([b1, b2, b3, b4, b5])


@register_model()
def inception(input_shape=(48, 48, 1), num_classes=7, *, stem_filters=64, blocks=4, n_start=64,
              n_step=32, l2=0.0002, dropout=0.4, dense_units=(1536,)):
    """Stem conv, then `blocks` I blocks (n = 64, 96, ...) with 2×2 max-pooling between them.

    The text gives no hidden dense layer; a 1536-unit one makes the count fit Table 1 (Inc0 4.8M).
    """
    inputs = layers.Input(input_shape, name="image")
    x = conv(inputs, stem_filters, "stem", l2=l2, bn=True)
    for i in range(blocks):
        x = inception_block(x, n_start + n_step * i, f"inc{i + 1}", l2)
        if x.shape[1] > 2:
            x = layers.MaxPooling2D(2, name=f"inc{i + 1}_downpool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    for i, u in enumerate(dense_units):
        x = layers.Dense(u, activation="relu", name=f"fc{i + 1}")(x)
    return model(inputs, classifier(x, num_classes), "inception")
