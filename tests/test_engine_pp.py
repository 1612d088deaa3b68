"""The training loop with PP-TimeSformer's recipe: the learning rate at every iteration with gradient accumulation
(CustomWarmupCosineDecay stepped per iteration), the update an epoch shorter than one accumulation window makes,
PaddleVideo's epoch checkpoint rule (and resuming from it), and MIX in a real run."""

import logging

import numpy as np
import pytest

from engine_helpers import capture_logs  # noqa: F401  (a fixture)
from engine_helpers import MOMENTUM, demo_cfg, load_params, make_data, max_abs_diff
from paddlevideo.tasks import run_files
from paddlevideo.tasks.train import train_model
from paddlevideo.visualization.records import read_records
from test_solver_pp import spec_epochs, spec_lr

NAME = "TimeSformer_demo"
SCHEDULE = ("OPTIMIZER.learning_rate={name: CustomWarmupCosineDecay, iter_step: True, max_epoch: 3, warmup_epochs: 1, "
            "warmup_start_lr: 0.001, cosine_base_lr: 0.01}")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    make_data(folder, num_train=14, num_val=4)
    return folder


def _lrs(out_dir):
    return [r["lr"] for r in read_records(out_dir / "training_records.jsonl") if r["kind"] == "step"]


def test_lr_at_every_iteration_with_accumulation(data_dir, tmp_path):
    """14 clips, batch 2: 7 iterations per epoch; updates of 2 micro-batches: 3 per epoch, the 7th batch skipped.
    The schedule still steps after every iteration, the skipped one included (PaddleVideo trains on it and discards
    its gradient), so iteration k of epoch e trains at lr(e + k / 7), summed step by step as PaddleVideo sums it."""
    out = tmp_path / "run"
    train_model(demo_cfg(data_dir, out, "epochs=2", "DATASET.batch_size=2", "GRADIENT_ACCUMULATION.global_batch_size=4",
                         MOMENTUM, SCHEDULE))
    epochs = spec_epochs(7, 14)
    want = [spec_lr(epochs[n], 0.001, 1, 0.01, 3) for n in list(range(6)) + list(range(7, 13))]
    assert _lrs(out) == want
    # not the per-update stepping of the other schedules: that would repeat each value twice
    assert len(set(_lrs(out))) == 12


def test_lr_steps_per_epoch_without_iter_step(data_dir, tmp_path):
    out = tmp_path / "run"
    train_model(demo_cfg(data_dir, out, "epochs=2", "DATASET.batch_size=7", "GRADIENT_ACCUMULATION.global_batch_size=7",
                         MOMENTUM, SCHEDULE.replace("iter_step: True", "iter_step: False")))
    assert _lrs(out) == [spec_lr(0, 0.001, 1, 0.01, 3)] * 2 + [spec_lr(1, 0.001, 1, 0.01, 3)] * 2


def test_an_epoch_shorter_than_one_window_makes_one_update_of_its_mean_gradient(data_dir, tmp_path, capture_logs):
    """7 batches against a window of 32: one update per epoch from the 7, each loss divided by 7 (their mean
    gradient), so the weights equal those of a run configured with a window of exactly 7; warned once."""
    common = ["epochs=2", "save_interval=1", "DATASET.batch_size=2", MOMENTUM]
    short = train_model(demo_cfg(data_dir, tmp_path / "short", *common, "GRADIENT_ACCUMULATION.global_batch_size=64"),
                        seed=5)
    exact = train_model(demo_cfg(data_dir, tmp_path / "exact", *common, "GRADIENT_ACCUMULATION.global_batch_size=14"),
                        seed=5)
    assert short["global_step"] == exact["global_step"] == 2
    a = load_params(tmp_path / "short" / f"{NAME}_epoch_00002.pdparams")
    b = load_params(tmp_path / "exact" / f"{NAME}_epoch_00002.pdparams")
    assert max_abs_diff(a, b) < 1e-6
    records = {id(r): r for r in capture_logs.records}.values()  # a record reaching two handlers counts once
    warned = [r.getMessage() for r in records if r.levelno == logging.WARNING
              and "one update accumulates 32" in r.getMessage()]
    assert len(warned) == 1 and "mean gradient (14 clips instead of 64)" in warned[0]


@pytest.mark.parametrize("interval, epochs, saved", [(3, 10, [1, 4, 7, 10]), (5, 20, [1, 6, 11, 16, 20]),
                                                     (1, 3, [1, 2, 3]), (4, 2, [1, 2])])
def test_paddlevideo_save_rule(interval, epochs, saved):
    assert [e + 1 for e in range(epochs) if run_files.saves_epoch(e, interval, epochs)] == saved


def test_checkpoints_are_paddlevideos_epochs_and_resume_continues(data_dir, tmp_path):
    """save_interval 3 over 5 epochs writes epochs 1, 4 and 5 (PaddleVideo's names); a run stopped in epoch 3
    resumes from epoch 1 and ends with the same weights as the run that was never stopped."""
    common = ["epochs=5", "save_interval=3", "DATASET.batch_size=7", "GRADIENT_ACCUMULATION.global_batch_size=7",
              MOMENTUM]
    train_model(demo_cfg(data_dir, tmp_path / "full", *common), seed=2)
    files = sorted(p.name for p in (tmp_path / "full").glob(f"{NAME}_epoch_*"))
    assert files == [f"{NAME}_epoch_0000{e}.{s}" for e in (1, 4, 5) for s in ("pdopt", "pdparams")]
    cut = train_model(demo_cfg(data_dir, tmp_path / "cut", *common), seed=2, max_iters=5)  # inside epoch 3
    assert cut["epochs_done"] == 2 and run_files.latest_epoch(str(tmp_path / "cut"), NAME) == 1
    resumed = train_model(demo_cfg(data_dir, tmp_path / "cut", *common), seed=2, resume=True)
    assert resumed["epochs_done"] == 5
    a = load_params(tmp_path / "full" / f"{NAME}_epoch_00005.pdparams")
    b = load_params(tmp_path / "cut" / f"{NAME}_epoch_00005.pdparams")
    assert max_abs_diff(a, b) < 1e-6


def test_training_with_mix_reports_lambda_weighted_accuracy(data_dir, tmp_path):
    out = tmp_path / "run"
    result = train_model(demo_cfg(data_dir, out, "epochs=1", "DATASET.batch_size=7",
                                  "GRADIENT_ACCUMULATION.global_batch_size=7",
                                  "MIX={name: VideoMix, cutmix_prob: 0.5, mixup_alpha: 0.2, cutmix_alpha: 1.0}"), seed=1)
    steps = [r for r in read_records(out / "training_records.jsonl") if r["kind"] == "step"]
    assert result["global_step"] == 2 and len(steps) == 2 and all(np.isfinite(r["loss"]) for r in steps)
    # a top-1 weighted by lam is a multiple of neither 1/7 nor 1 in general; unmixed it would be k/7
    assert all(0.0 <= r["top1"] <= 1.0 for r in steps)
