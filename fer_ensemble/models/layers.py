"""Small building blocks shared by the builders: conv units and the float32 softmax head."""
from __future__ import annotations

from .. import _tf  # noqa: F401
import keras
from keras import layers, regularizers

# Keras defaults to 0.99; with the few hundred steps of a small data set the moving statistics
# then lag far behind the batch statistics and validation collapses to one class.
BN_MOMENTUM = 0.9


def conv(x, filters: int, name: str, kernel: int = 3, strides: int = 1, l2: float = 0.0,
         activation: str | None = "relu", bn: bool = False, bn_before_act: bool = True):
    """Conv2D (same padding) with optional batch norm, before or after the activation."""
    reg = regularizers.L2(l2) if l2 else None
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", kernel_regularizer=reg,
                      use_bias=not bn, name=f"{name}_conv")(x)
    if bn and bn_before_act:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    if bn and not bn_before_act:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return x


def dense_stack(x, units: tuple[int, ...], dropout: float, prefix: str = "fc"):
    for i, u in enumerate(units):
        x = layers.Dense(u, activation="relu", name=f"{prefix}{i + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{prefix}{i + 1}_drop")(x)
    return x


def classifier(x, num_classes: int):
    """The softmax head, always float32 so mixed precision stays numerically safe."""
    x = layers.Dense(num_classes, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="predictions")(x)


def model(inputs, outputs, name: str) -> keras.Model:
    return keras.Model(inputs, outputs, name=name)
