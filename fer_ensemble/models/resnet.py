"""ResNet builders (section 4.3): the study's residual block, and standard ResNet18/34 layouts."""
from __future__ import annotations

from keras import layers

from .layers import BN_MOMENTUM, classifier, conv, model
from .registry import register_model


def paper_block(x, filters: int, name: str, downsample: bool):
    """R = B, then C–B–C (3×3) added to the block input; stride 2 (and a strided shortcut) to downsample."""
    b = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn0")(x)
    s = 2 if downsample else 1
    h = conv(b, filters, f"{name}_c1", strides=s, bn=True)
    h = conv(h, filters, f"{name}_c2", activation=None)
    if downsample or x.shape[-1] != filters:
        b = layers.Conv2D(filters, 1, strides=s, padding="same", name=f"{name}_short")(b)
    return layers.Add(name=f"{name}_add")([h, b])


def basic_block(x, filters: int, name: str, downsample: bool):
    """He et al. basic block: C-B-ReLU-C-B + shortcut, ReLU."""
    s = 2 if downsample else 1
    h = conv(x, filters, f"{name}_c1", strides=s, bn=True)
    h = conv(h, filters, f"{name}_c2", bn=True, activation=None)
    short = x
    if downsample or x.shape[-1] != filters:
        short = layers.Conv2D(filters, 1, strides=s, use_bias=False, name=f"{name}_short")(x)
        short = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_short_bn")(short)
    return layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([h, short]))


def _resnet(input_shape, num_classes, stages, filters, block, dropout, name, head_bn=False, stem_stride=1):
    inputs = layers.Input(input_shape, name="image")
    # stem_stride=2 halves every stage's feature maps: about 4x fewer FLOPs on a 48x48 face.
    x = conv(inputs, filters, "stem", strides=stem_stride, bn=True)
    fn = paper_block if block == "paper" else basic_block
    for s, n_blocks in enumerate(stages):
        for b in range(n_blocks):
            x = fn(x, filters * 2 ** s, f"s{s + 1}b{b + 1}", downsample=(b == 0 and s > 0))
    if head_bn:
        # The paper block's residual stream is never normalised after its adds: do it once here.
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="head_bn")(x)
        x = layers.Activation("relu", name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="drop")(x)
    return model(inputs, classifier(x, num_classes), name)


@register_model()
def resnet_paper(input_shape=(48, 48, 1), num_classes=7, *, stages=(3, 4, 6, 3), filters=64, dropout=0.0,
                 head_bn=True):
    """The study's ResNet: ResNet2 uses stages [2, 5, 5, 2], ResNet3/4 [3, 4, 6, 3].

    head_bn (on by default; not in the study's text) adds batch norm and ReLU before the pooling, as
    pre-activation ResNets end. Each block adds an un-normalised conv output to its stream, so the
    stream's variance grows block by block; under Adam at 1e-3 the deep 64-filter members' logits
    reached thousands within ten steps and they collapsed to one class (docs/research/paper-zoo.md).
    Even with head_bn, Adam at 1e-3 inflates the 64-filter members' branches until they stay at
    chance on real faces: models_zoo/paper.toml trains them at 3e-4-5e-4."""
    return _resnet(input_shape, num_classes, tuple(stages), filters, "paper", dropout, "resnet_paper", head_bn)


@register_model()
def resnet18(input_shape=(48, 48, 1), num_classes=7, *, filters=64, dropout=0.0, stem_stride=1):
    return _resnet(input_shape, num_classes, (2, 2, 2, 2), filters, "basic", dropout, "resnet18",
                   stem_stride=stem_stride)


@register_model()
def resnet34(input_shape=(48, 48, 1), num_classes=7, *, filters=64, dropout=0.0, stem_stride=1):
    return _resnet(input_shape, num_classes, (3, 4, 6, 3), filters, "basic", dropout, "resnet34",
                   stem_stride=stem_stride)
