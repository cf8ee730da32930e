"""VGG-style builders of the reference study (section 4.1): VGG_v0, VGG_v1, VGG_v2 and old_net.

C conv, B batch norm, P max-pool, D dropout, F dense.
"""
from __future__ import annotations

from keras import layers

from .layers import classifier, conv, dense_stack, model
from .registry import register_model


def _vgg(input_shape, num_classes, *, block: str, filters, dropout, dense_units, dense_dropout,
         first_l2, name):
    inputs = layers.Input(input_shape, name="image")
    x = inputs
    for b, f in enumerate(filters):
        for c in range(2):
            l2 = first_l2 if (b == 0 and c == 0) else 0.0
            x = conv(x, f, name=f"block{b + 1}_{c + 1}", l2=l2,
                     bn=(block == "CBCB") or (block == "CCB" and c == 1), bn_before_act=False)
        x = layers.MaxPooling2D(2, name=f"block{b + 1}_pool")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"block{b + 1}_drop")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense_stack(x, tuple(dense_units), dense_dropout)
    return model(inputs, classifier(x, num_classes), name)


@register_model()
def vgg_v0(input_shape=(48, 48, 1), num_classes=7, *, filters=(64, 128, 256, 512), dropout=0.25,
           dense_units=(25, 25), dense_dropout=0.0):
    """VGG_v0: 4×[C C P D], then F 25, 25, n (4.8M parameters at 48×48)."""
    return _vgg(input_shape, num_classes, block="CC", filters=filters, dropout=dropout,
                dense_units=dense_units, dense_dropout=dense_dropout, first_l2=0.0, name="vgg_v0")


@register_model()
def vgg_v1(input_shape=(48, 48, 1), num_classes=7, *, filters=(64, 128, 256, 512), dropout=0.25,
           dense_units=(512, 256, 128), dense_dropout=0.2, first_l2=0.01):
    """VGG_v1: 4×[C C B P D], then F 512, 256, 128, n; L2 0.01 on the first conv.

    The study gives no dense dropout rate. 0.5 after each of the three dense layers kills the head:
    most ReLUs of the last dense layer go dead within twenty steps and the net answers the class
    prior (docs/research/paper-zoo.md); 0.2 learns."""
    return _vgg(input_shape, num_classes, block="CCB", filters=filters, dropout=dropout,
                dense_units=dense_units, dense_dropout=dense_dropout, first_l2=first_l2, name="vgg_v1")


@register_model()
def vgg_v2(input_shape=(48, 48, 1), num_classes=7, *, filters=(64, 128, 256, 512), dropout=0.25,
           dense_units=(512, 256, 128), dense_dropout=0.2, first_l2=0.01):
    """VGG_v2: 4×[C B C B P D], then F 512, 256, 128, n; L2 0.01 on the first conv; dense dropout
    0.2 for the reason given in vgg_v1."""
    return _vgg(input_shape, num_classes, block="CBCB", filters=filters, dropout=dropout,
                dense_units=dense_units, dense_dropout=dense_dropout, first_l2=first_l2, name="vgg_v2")


@register_model()
def old_net(input_shape=(48, 48, 1), num_classes=7, *, filters=(32, 64, 128), dropout=0.25,
            dense_units=(256,), dense_dropout=0.5):
    """The study's first network (section 5.1): a plain VGG-like 3×[C C P D] with one hidden F."""
    return _vgg(input_shape, num_classes, block="CC", filters=filters, dropout=dropout,
                dense_units=dense_units, dense_dropout=dense_dropout, first_l2=0.0, name="old_net")
