"""Test-time augmentation views: the numpy views and the fused model's layers agree."""
from __future__ import annotations

import numpy as np
import pytest

from fer_ensemble.ensemble.views import View, apply_view, shift_pixels, tta_views
from fer_ensemble.errors import EnsembleError


def test_view_sets():
    assert tta_views(None, 48) == [View(False, 0, 0)]
    assert tta_views("flip", 48) == [View(False, 0, 0), View(True, 0, 0)]
    views = tta_views("flip-shift", 48)
    assert len(views) == 10 and len(set(views)) == 10 and views[0] == View(False, 0, 0)
    assert {abs(v.dy) + abs(v.dx) for v in views} == {0, 2}
    assert shift_pixels(48) == 2 and shift_pixels(96) == 4 and shift_pixels(12) == 1
    with pytest.raises(EnsembleError, match="unknown test-time augmentation 'rot'"):
        tta_views("rot", 48)


def test_shift_moves_content_and_fills_with_the_nearest_pixel():
    x = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6, 1)
    down = apply_view(x, View(False, 2, 0))
    np.testing.assert_array_equal(down[:, 2:], x[:, :3])               # content moved down by 2
    np.testing.assert_array_equal(down[:, 0], x[:, 0])                 # border: the first row
    np.testing.assert_array_equal(down[:, 1], x[:, 0])
    left = apply_view(x, View(True, 0, -1))
    np.testing.assert_array_equal(left[:, :, :5], x[:, :, ::-1][:, :, 1:])
    np.testing.assert_array_equal(left[:, :, 5], x[:, :, 0])           # mirrored, then its last column


@pytest.mark.parametrize("view", tta_views("flip-shift", 12))
def test_graph_layers_equal_numpy_views(view, tmp_path):
    import keras

    from fer_ensemble.ensemble.layers import HorizontalFlip, Shift

    x = np.random.default_rng(0).random((3, 12, 12, 1)).astype(np.float32)
    inp = keras.Input((12, 12, 1))
    t = HorizontalFlip()(inp) if view.flip else inp
    model = keras.Model(inp, Shift(view.dy, view.dx)(t))
    np.testing.assert_array_equal(model.predict(x, verbose=0), apply_view(x, view))
    path = tmp_path / "view.keras"
    model.save(path)
    again = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(again.predict(x, verbose=0), apply_view(x, view))
