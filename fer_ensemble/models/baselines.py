"""Networks of the other studies: the 6-conv baseline, a LeNet-style net, a shallow net, and a
depthwise-separable net for CPU budgets."""
from __future__ import annotations

from keras import layers

from .layers import BN_MOMENTUM, classifier, conv, dense_stack, model
from .registry import register_model


@register_model()
def baseline6(input_shape=(48, 48, 1), num_classes=7, *, filters=(16, 32, 64, 128, 256, 256),
              dropout=0.2, dense_units=(512,), dense_dropout=0.5):
    """Isikli et al.: 6 conv (3×3, BN before ReLU), dropout + max-pool after every other conv."""
    inputs = layers.Input(input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters):
        x = conv(x, f, f"conv{i + 1}", bn=True)
        if i % 2 == 1:
            x = layers.Dropout(dropout, name=f"conv{i + 1}_drop")(x)
            x = layers.MaxPooling2D(2, name=f"conv{i + 1}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense_stack(x, tuple(dense_units), dense_dropout)
    return model(inputs, classifier(x, num_classes), "baseline6")


@register_model()
def lenet(input_shape=(48, 48, 1), num_classes=7, *, filters=(32, 64, 128), dense_units=(256, 128, 64),
          dense_dropout=0.3):
    """LT2326 project: LeNet-style, 3 conv with BN and pooling, 3 dense with dropout."""
    inputs = layers.Input(input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters):
        x = conv(x, f, f"conv{i + 1}", kernel=5 if i == 0 else 3, bn=True)
        x = layers.MaxPooling2D(2, name=f"conv{i + 1}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense_stack(x, tuple(dense_units), dense_dropout)
    return model(inputs, classifier(x, num_classes), "lenet")


@register_model()
def shallow(input_shape=(48, 48, 1), num_classes=7, *, filters=(32, 64), dropout=0.25, dense_units=(128,)):
    """Zakavi & Okhunov's shallow net: 2×[C C P B D], then F."""
    inputs = layers.Input(input_shape, name="image")
    x = inputs
    for b, f in enumerate(filters):
        x = conv(x, f, f"block{b + 1}_1")
        x = conv(x, f, f"block{b + 1}_2")
        x = layers.MaxPooling2D(2, name=f"block{b + 1}_pool")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{b + 1}_bn")(x)
        x = layers.Dropout(dropout, name=f"block{b + 1}_drop")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense_stack(x, tuple(dense_units), 0.5)
    return model(inputs, classifier(x, num_classes), "shallow")


@register_model()
def sepnet(input_shape=(48, 48, 1), num_classes=7, *, filters=(32, 64, 128, 256), dropout=0.2,
           dense_units=(256,)):
    """Depthwise-separable VGG-like net: stages of 2 SeparableConv+BN, pool, dropout; cheap on CPU."""
    inputs = layers.Input(input_shape, name="image")
    x = conv(inputs, filters[0], "stem", bn=True)
    for b, f in enumerate(filters):
        for c in range(2):
            x = layers.SeparableConv2D(f, 3, padding="same", use_bias=False, name=f"sep{b + 1}_{c + 1}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"sep{b + 1}_{c + 1}_bn")(x)
            x = layers.Activation("relu", name=f"sep{b + 1}_{c + 1}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"sep{b + 1}_pool")(x)
        x = layers.Dropout(dropout, name=f"sep{b + 1}_drop")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = dense_stack(x, tuple(dense_units), 0.4)
    return model(inputs, classifier(x, num_classes), "sepnet")
