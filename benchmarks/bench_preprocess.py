"""Histogram equalization of FER-sized faces: the in-model layer (`preprocess="equalize"`: 256-bin
histograms from one segment sum, then a gather) vs the naive in-graph way (rank every pixel by a sort and
a searchsorted) and vs OpenCV's `cv2.equalizeHist` in a Python loop over uint8 images (outside the
model, so not an option for a saved model, but the field's reference); then what the layer adds
to a forward pass of the CPU zoo's narrow VGG_v2 (batch 256). Then the same for local contrast
normalization (`preprocess="local_contrast"`: the Gaussian blur as one matrix product per axis) vs
the naive in-graph way (one 2-D Gaussian convolution) and vs `cv2.GaussianBlur` in a Python loop."""
from __future__ import annotations

import numpy as np

from _common import emit, median_time
from fer_ensemble.models import create_model
from fer_ensemble.models.preprocess import HistogramEqualization, LocalContrastNormalization

VGG = {"filters": [32, 64, 128, 256], "dropout": 0.1, "dense_units": [256], "dense_dropout": 0.4, "first_l2": 0.0}


def sort_rank_equalize(x):
    """The naive in-graph way: the same mapping, with ranks from sort + searchsorted."""
    import tensorflow as tf

    flat = tf.reshape(x, (tf.shape(x)[0], -1))
    ranks = tf.cast(tf.searchsorted(tf.sort(flat, axis=-1), flat, side="right"), x.dtype)
    r_min = tf.reduce_min(ranks, axis=-1, keepdims=True)
    n = tf.cast(tf.shape(flat)[1], x.dtype)
    return tf.reshape(tf.math.divide_no_nan(ranks - r_min, n - r_min), tf.shape(x))


def full_kernel_local_contrast(x, sigma=4.0):
    """The naive in-graph way: the layer's formula with one 2-D Gaussian convolution, where the
    layer multiplies by a blur matrix per axis."""
    import tensorflow as tf

    r = int(2 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    taps /= taps.sum()
    kernel = tf.constant(np.outer(taps, taps)[:, :, None, None], tf.float32)

    def blur(a):
        a = tf.pad(a, [[0, 0], [r, r], [r, r], [0, 0]], mode="SYMMETRIC")
        return tf.nn.conv2d(a, kernel, 1, "VALID")

    centred = x - blur(x)
    spread = tf.sqrt(tf.maximum(blur(centred * centred), 0.0))
    floor = tf.maximum(tf.reduce_mean(spread, axis=(1, 2), keepdims=True), 0.25 / 255.0)
    return 0.5 + 0.25 * tf.math.divide_no_nan(centred, tf.maximum(spread, floor))


def cv2_local_contrast(faces, sigma=4.0):
    """The same formula with OpenCV, one image at a time (outside any model)."""
    import cv2

    size = 2 * int(2 * sigma + 0.5) + 1
    out = []
    for f in faces:
        img = f.astype("float32") / 255.0
        centred = img - cv2.GaussianBlur(img, (size, size), sigma, borderType=cv2.BORDER_REFLECT)
        spread = np.sqrt(np.maximum(cv2.GaussianBlur(centred * centred, (size, size), sigma,
                                                     borderType=cv2.BORDER_REFLECT), 0.0))
        out.append(0.5 + 0.25 * centred / np.maximum(spread, max(spread.mean(), 0.25 / 255.0)))
    return np.stack(out)


def local_contrast(faces, x, batch, plain_s):
    import tensorflow as tf

    traced = tf.function(LocalContrastNormalization())
    naive = tf.function(full_kernel_local_contrast)
    ours, full, by_cv2 = traced(x).numpy(), naive(x).numpy(), cv2_local_contrast(faces)
    t_layer = median_time(lambda: traced(x).numpy(), 5)
    t_full = median_time(lambda: naive(x).numpy(), 5)
    t_cv2 = median_time(lambda: cv2_local_contrast(faces), 5)
    lc = tf.function(create_model("vgg_v2", preprocess="local_contrast", **VGG))
    lc(batch)
    t_lc = median_time(lambda: lc(batch).numpy(), 7)
    return ({"layer_s": round(t_layer, 4), "full_2d_kernel_s": round(t_full, 4),
             "layer_speedup_vs_full_2d_kernel": round(t_full / t_layer, 1),
             "cv2_loop_s": round(t_cv2, 4), "layer_vs_cv2_loop": round(t_cv2 / t_layer, 2),
             "max_difference_vs_full_2d_kernel": float(np.abs(ours - full).max()),
             "max_difference_vs_cv2": float(np.abs(ours[..., 0] - by_cv2).max())},
            {"with_local_contrast_s": round(t_lc, 4),
             "local_contrast_overhead": round(t_lc / plain_s - 1, 3)})


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
    lc_faces, lc_forward = local_contrast(faces, x, batch, t_plain)
    emit("preprocess", {
        "equalize_3589_faces": {"layer_s": round(t_layer, 4), "sort_rank_s": round(t_sort, 4),
                                "layer_speedup_vs_sort_rank": round(t_sort / t_layer, 1),
                                "cv2_loop_s": round(t_cv2, 4), "layer_vs_cv2_loop": round(t_cv2 / t_layer, 2),
                                "max_difference_vs_sort_rank": float(np.abs(ours - by_sort).max()),
                                "max_difference_vs_cv2_grey_levels": round(gap, 3)},
        "vgg_v2_w32_forward_batch256": {"plain_s": round(t_plain, 4), "with_equalize_s": round(t_eq, 4),
                                         "overhead": round(t_eq / t_plain - 1, 3), **lc_forward},
        "local_contrast_3589_faces": lc_faces})


if __name__ == "__main__":
    main()
