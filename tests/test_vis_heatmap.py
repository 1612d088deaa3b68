"""The attention figures: overlay colours follow the map on one scale per clip, bad maps are errors, the
JSON holds the numbers, and a failed write leaves no file behind."""

import json

import numpy as np
import pytest

from paddlevideo.visualization import heatmap
from paddlevideo.visualization.files import VisualizationError


def test_overlay_colours_follow_the_map_on_one_scale():
    import matplotlib

    frames = np.full((2, 16, 16, 3), 100, np.uint8)
    maps = np.zeros((2, 2, 2))
    maps[0, 0, 0] = 1.0  # frame 0: the top-left patch is the clip's hottest
    maps[1] = 0.25  # frame 1: a quarter of it everywhere
    _, overlays = heatmap.overlay_heatmaps(frames, maps, alpha=0.5)
    cmap = matplotlib.colormaps[heatmap.COLORMAP]
    expected_top = np.rint(0.5 * 100 + 0.5 * 255 * np.array(cmap(1.0)[:3]))
    expected_zero = np.rint(0.5 * 100 + 0.5 * 255 * np.array(cmap(0.0)[:3]))
    expected_quarter = np.rint(0.5 * 100 + 0.5 * 255 * np.array(cmap(0.25)[:3]))
    assert np.abs(overlays[0, 0, 0] - expected_top).max() <= 1  # pixel centre of the hot patch, at its corner
    assert np.abs(overlays[0, 15, 15] - expected_zero).max() <= 1
    assert np.abs(overlays[1, 8, 8] - expected_quarter).max() <= 1  # scaled by the clip's maximum, not its own


def test_display_scale_and_enlargement():
    assert heatmap.display_scale(32, 32) == 7 and heatmap.display_scale(224, 300) == 1
    big, overlays = heatmap.overlay_heatmaps(np.zeros((1, 4, 6, 3), np.uint8), np.ones((1, 2, 3)), scale=3)
    assert big.shape == overlays.shape == (1, 12, 18, 3)


@pytest.mark.parametrize("frames, maps, message", [
    (np.zeros((2, 8, 8)), np.ones((2, 2, 2)), "uint8 RGB"),
    (np.zeros((2, 8, 8, 3)), np.ones((3, 2, 2)), "T = 2 frames"),
    (np.zeros((2, 8, 8, 3)), np.full((2, 2, 2), np.nan), "non-finite"),
])
def test_bad_maps_are_errors(tmp_path, frames, maps, message):
    with pytest.raises(VisualizationError, match=message):
        heatmap.save_attention_grid(tmp_path / "grid.png", frames, maps)
    assert not list(tmp_path.iterdir())


def test_json_holds_the_numbers_and_failed_writes_leave_nothing(tmp_path, monkeypatch):
    maps = np.random.default_rng(0).uniform(size=(3, 2, 2))
    share = maps.sum(axis=(1, 2)) / maps.sum()
    heatmap.save_attention_json(tmp_path / "a.json", maps, share, video="v.avi", prediction={"scores": [np.float32(0.5)]})
    record = json.loads((tmp_path / "a.json").read_text())
    assert np.array_equal(np.array(record["maps"]), maps) and record["temporal_share"] == share.tolist()
    assert record["video"] == "v.avi" and record["prediction"]["scores"] == [0.5]

    # a write that fails half-way (a full disk: injected into matplotlib) leaves no file, not even a partial one
    from matplotlib.figure import Figure

    def fail(self, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", fail)
    with pytest.raises(OSError, match="No space"):
        heatmap.save_temporal_share_plot(tmp_path / "share.png", share)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
