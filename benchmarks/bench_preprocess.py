"""Histogram equalization of FER-sized faces: the in-model layer (`preprocess="equalize"`: 256-bin
histograms from one segment sum, then a gather) vs the naive in-graph way (rank every pixel by a sort and
a searchsorted) and vs OpenCV's `cv2.equalizeHist` in a Python loop over uint8 images (outside the
model, so not an option for a saved model, but the field's reference); then what the layer adds
to a forward pass of the CPU zoo's narrow VGG_v2 (batch 256)."""
from __future__ import annotations

import numpy as np

from _common import emit, median_time
from fer_ensemble.models import create_model
from fer_ensemble.models.preprocess import HistogramEqualization

VGG = {"filters": [32, 64, 128, 256], "dropout": 0.1, "dense_units": [256], "dense_dropout": 0.4, "first_l2": 0.0}


def sort_rank_equalize(x):
    """The naive in-graph way: the same mapping, with ranks from sort + searchsorted."""
    import tensorflow as tf

    flat = tf.reshape(x, (tf.shape(x)[0], -1))
    ranks = tf.cast(tf.searchsorted(tf.sort(flat, axis=-1), flat, side="right"), x.dtype)
    r_min = tf.reduce_min(ranks, axis=-1, keepdims=True)
    n = tf.cast(tf.shape(flat)[1], x.dtype)
    return tf.reshape(tf.math.divide_no_nan(ranks - r_min, n - r_min), tf.shape(x))


def main():
    import cv2
    import tensorflow as tf

    rng = np.random.default_rng(0)
    faces = np.clip(rng.normal(120, 40, (3589, 48, 48)), 0, 255).astype("uint8")   # one FER2013 split
    x = faces[..., None].astype("float32") / 255.0
    traced = tf.function(HistogramEqualization())
    naive = tf.function(sort_rank_equalize)
    ours, by_sort = traced(x).numpy(), naive(x).numpy()
    t_layer = median_time(lambda: traced(x).numpy(), 5)
    t_sort = median_time(lambda: naive(x).numpy(), 5)
    t_cv2 = median_time(lambda: np.stack([cv2.equalizeHist(f) for f in faces]), 5)
    gap = float(np.abs(ours[..., 0] * 255 - np.stack([cv2.equalizeHist(f) for f in faces])).max())

    batch = x[:256]
    plain = create_model("vgg_v2", **VGG)
    eq = create_model("vgg_v2", preprocess="equalize", **VGG)
    f_plain, f_eq = tf.function(plain), tf.function(eq)
    f_plain(batch), f_eq(batch)
    t_plain = median_time(lambda: f_plain(batch).numpy(), 7)
    t_eq = median_time(lambda: f_eq(batch).numpy(), 7)
    emit("preprocess", {
        "equalize_3589_faces": {"layer_s": round(t_layer, 4), "sort_rank_s": round(t_sort, 4),
                                "layer_speedup_vs_sort_rank": round(t_sort / t_layer, 1),
                                "cv2_loop_s": round(t_cv2, 4), "layer_vs_cv2_loop": round(t_cv2 / t_layer, 2),
                                "max_difference_vs_sort_rank": float(np.abs(ours - by_sort).max()),
                                "max_difference_vs_cv2_grey_levels": round(gap, 3)},
        "vgg_v2_w32_forward_batch256": {"plain_s": round(t_plain, 4), "with_equalize_s": round(t_eq, 4),
                                         "overhead": round(t_eq / t_plain - 1, 3)}})


if __name__ == "__main__":
    main()
