"""Acceptance: on the motion-only demo data divided space-time attention reaches >= 0.95 validation
top-1, and the same recipe with space_only (blind to frame order) gets the motion direction at chance.

The divided run is the README demo recipe itself (2000 clips, 16 epochs = 2000 updates, seed 1234), the
session's one ``demo_recipe`` training (tests/conftest.py), shared with the other slow tests: its best
validation top-1 is read from the run's training records and checked against what train.log announced.
The space_only run is that recipe with ``MODEL.backbone.attention_type=space_only`` on the same data
(``demo_space_only``, trained beside the recipe). The
demo classes are right / left / down / up: a clip's *set* of frames shows the motion axis (horizontal or
vertical) but not the direction, which only frame order tells. An order-blind model can therefore learn
the axis (top-1 up to 0.5) and no more: among the clips whose axis it gets right, it picks the direction
at chance (0.5). docs/benchmarks.md "Demo training" has the numbers for six seeds.
"""

import re

import numpy as np
import pytest

from demo_model import EPOCHS


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
def test_demo_divided_learns_motion(demo_recipe):
    from paddlevideo.visualization.records import read_records

    records = read_records(demo_recipe.output_dir / "training_records.jsonl")
    val_top1 = [r["top1"] for r in records if r["kind"] == "epoch" and r["split"] == "val"]
    assert len(val_top1) == EPOCHS, val_top1
    assert max(val_top1) >= DIVIDED_BAR, val_top1
    log = (demo_recipe.output_dir / "train.log").read_text()
    announced = [float(v) for v in re.findall(r"Already save the best model \(top1 acc\)([0-9.]+)", log)]
    assert announced and announced[-1] == pytest.approx(max(val_top1), abs=5e-5)


@pytest.mark.slow
def test_demo_space_only_gets_the_direction_at_chance(demo_space_only, tmp_path):
    from paddlevideo.tasks.test import test_model
    from paddlevideo.config import get_config
    from paddlevideo.visualization.records import read_records

    assert demo_space_only.epochs == EPOCHS
    records = read_records(demo_space_only.output_dir / "training_records.jsonl")
    val_top1 = [r["top1"] for r in records if r["kind"] == "epoch" and r["split"] == "val"]
    assert len(val_top1) == EPOCHS, val_top1
    assert max(val_top1) <= SPACE_ONLY_TOP1_MAX, val_top1
    space_cfg = get_config(str(demo_space_only.config), demo_space_only.overrides, show=False)
    assert space_cfg.MODEL.backbone.attention_type == "space_only"
    scores_path = tmp_path / "space_scores.npz"
    # The last epoch's weights, not the best: picking the best validation would select for lucky directions.
    test_model(space_cfg, str(demo_space_only.last_weights), save_scores=True, scores_path=str(scores_path))
    saved = np.load(scores_path)
    axis, direction = axis_and_direction_accuracy(saved["scores"], saved["labels"])
    assert direction <= DIRECTION_CHANCE_MAX, (axis, direction)
