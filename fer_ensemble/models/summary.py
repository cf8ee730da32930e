"""Model summaries for `fer-ensemble zoo list`: parameters and depth as in the study's Table 1."""
from __future__ import annotations


def model_depth(net) -> int:
    """Weighted layers (conv, separable conv, dense) on the main path, the output layer included;
    1×1 shortcut convolutions are not counted."""
    import keras

    depth = 0
    for layer in net.layers:
        if isinstance(layer, keras.Model):
            depth += model_depth(layer)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.Dense)):
            depth += not layer.name.endswith("_short")
    return depth
