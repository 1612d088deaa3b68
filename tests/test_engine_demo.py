"""Acceptance: on the motion-only demo data divided space-time attention reaches >= 0.95 validation
top-1, and the same recipe with space_only (blind to frame order) gets the motion direction at chance.

Both runs are the README demo recipe itself (2000 clips, 16 epochs = 2000 updates, seed 1234). The demo
classes are right / left / down / up: a clip's *set* of frames shows the motion axis (horizontal or
vertical) but not the direction, which only frame order tells. An order-blind model can therefore learn
the axis (top-1 up to 0.5) and no more: among the clips whose axis it gets right, it picks the direction
at chance (0.5). docs/benchmarks.md "Demo training" has the numbers for six seeds.
"""

import numpy as np
import pytest

from engine_helpers import demo_cfg, make_data

# The README recipe (configs/recognition/timesformer/timesformer_demo_videos.yaml, epochs 16).
NUM_TRAIN, NUM_VAL = 2000, 200
EPOCHS = 16
DIVIDED_BAR = 0.95           # the bar; measured 1.0 on every seed tried
SPACE_ONLY_TOP1_MAX = 0.62   # the order-blind cap is 0.5 (axis only); best of 16 noisy validations
DIRECTION_CHANCE_MAX = 0.65  # direction given the right axis, last epoch: chance 0.5, ~200 clips: 4 sigma


def axis_and_direction_accuracy(scores, labels):
    """Accuracy of the motion axis (labels 0/1 horizontal, 2/3 vertical), and of the direction among
    the clips whose axis is predicted correctly."""
    predicted = np.argmax(scores, axis=1)
    axis_right = predicted // 2 == labels // 2
    return float(axis_right.mean()), float((predicted[axis_right] == labels[axis_right]).mean())


def test_axis_and_direction_accuracy_counts_by_hand():
    labels = np.array([0, 1, 2, 3, 0, 2])
    scores = np.eye(4)[[0, 0, 2, 1, 1, 3]]  # right, wrong dir, right, wrong axis, wrong dir, wrong dir
    axis, direction = axis_and_direction_accuracy(scores, labels)
    assert axis == pytest.approx(5 / 6) and direction == pytest.approx(2 / 5)


@pytest.mark.slow
def test_demo_divided_learns_motion_and_space_only_does_not(tmp_path):
    from paddlevideo.tasks.test import test_model
    from paddlevideo.tasks.train import train_model

    data = tmp_path / "data"
    make_data(data, num_train=NUM_TRAIN, num_val=NUM_VAL)
    divided = train_model(demo_cfg(data, tmp_path / "divided", f"epochs={EPOCHS}", "log_interval=50"),
                          validate=True, seed=1234)
    assert divided["best_top1"] >= DIVIDED_BAR, divided["best_top1"]

    space_cfg = demo_cfg(data, tmp_path / "space", f"epochs={EPOCHS}", "log_interval=50",
                         "MODEL.backbone.attention_type=space_only")
    space = train_model(space_cfg, validate=True, seed=1234)
    assert space["best_top1"] <= SPACE_ONLY_TOP1_MAX, space["best_top1"]
    scores_path = tmp_path / "space_scores.npz"
    # The last epoch's weights, not the best: picking the best validation would select for lucky directions.
    test_model(space_cfg, str(tmp_path / "space" / f"TimeSformer_demo_epoch_{EPOCHS:05d}.pdparams"),
               save_scores=True, scores_path=str(scores_path))
    saved = np.load(scores_path)
    axis, direction = axis_and_direction_accuracy(saved["scores"], saved["labels"])
    assert direction <= DIRECTION_CHANCE_MAX, (axis, direction)
