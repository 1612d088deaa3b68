"""Training loop: gradient accumulation equivalence, resume equality, NaN stop, --amp on CPU."""

import subprocess
import sys

import numpy as np
import pytest

from engine_helpers import MOMENTUM, REPO, DEMO_CONFIG, data_overrides, demo_cfg, load_params, make_data, max_abs_diff
from paddlevideo.tasks.train import TrainingDiverged, train_model


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    make_data(folder, num_train=16, num_val=8)
    return folder


def test_accumulation_4x1_equals_1x4(data_dir, tmp_path):
    common = ["epochs=1", "save_interval=1", "GRADIENT_ACCUMULATION.global_batch_size=4", MOMENTUM]
    micro = train_model(demo_cfg(data_dir, tmp_path / "a", "DATASET.batch_size=1", *common), seed=7)
    whole = train_model(demo_cfg(data_dir, tmp_path / "b", "DATASET.batch_size=4", *common), seed=7)
    assert micro["global_step"] == whole["global_step"] == 4
    a = load_params(tmp_path / "a" / "TimeSformer_demo_epoch_00001.pdparams")
    b = load_params(tmp_path / "b" / "TimeSformer_demo_epoch_00001.pdparams")
    assert max_abs_diff(a, b) < 1e-5
    # the runs did train: the weights moved away from each other's start (same seed => same init)
    fresh = _fresh_params(data_dir, tmp_path)
    assert max_abs_diff(a, fresh) > 1e-3


def _fresh_params(data_dir, tmp_path):
    from paddlevideo.modeling.builder import build_model
    from paddlevideo.tasks.train import seed_everything

    seed_everything(7)
    model = build_model(demo_cfg(data_dir, tmp_path / "c").MODEL)
    return {k: v.numpy() for k, v in model.state_dict().items()}


def test_resume_repeats_the_uninterrupted_run(data_dir, tmp_path):
    # the demo recipe itself (AdamW, warm-up + cosine per update, grad clip), 3 epochs of 4 updates
    common = ["epochs=3", "save_interval=1", "DATASET.batch_size=4", "GRADIENT_ACCUMULATION.global_batch_size=4",
              "OPTIMIZER.learning_rate.warmup_steps=3"]
    full = train_model(demo_cfg(data_dir, tmp_path / "full", *common), seed=3)
    cut = train_model(demo_cfg(data_dir, tmp_path / "cut", *common), seed=3, max_iters=8)  # stops after epoch 2
    assert cut["epochs_done"] == 2
    assert not (tmp_path / "cut" / "TimeSformer_demo_epoch_00003.pdopt").exists()
    resumed = train_model(demo_cfg(data_dir, tmp_path / "cut", *common), seed=3, resume=True)
    assert resumed["epochs_done"] == 3 and len(resumed["train_loss"]) == 4
    np.testing.assert_allclose(cut["train_loss"], full["train_loss"][:8], rtol=0, atol=1e-6)
    np.testing.assert_allclose(resumed["train_loss"], full["train_loss"][8:], rtol=0, atol=1e-6)
    a = load_params(tmp_path / "full" / "TimeSformer_demo_epoch_00003.pdparams")
    b = load_params(tmp_path / "cut" / "TimeSformer_demo_epoch_00003.pdparams")
    assert max_abs_diff(a, b) < 1e-6
    # a different seed gives different losses, so the equality above is not vacuous
    other = train_model(demo_cfg(data_dir, tmp_path / "other", *common), seed=4, max_iters=4)
    assert not np.allclose(other["train_loss"], full["train_loss"][:4], atol=1e-6)


def test_nan_loss_stops_with_step_and_keeps_last_checkpoint(data_dir, tmp_path):
    out = tmp_path / "run"
    good = ["epochs=1", "save_interval=1", "DATASET.batch_size=4", "GRADIENT_ACCUMULATION.global_batch_size=4", MOMENTUM]
    train_model(demo_cfg(data_dir, out, *good), seed=1)
    before = load_params(out / "TimeSformer_demo_epoch_00001.pdparams")
    huge = good[:-1] + ["epochs=2", "OPTIMIZER={name: Momentum, momentum: 0.9, learning_rate: 1e30}"]
    with pytest.raises(TrainingDiverged, match=r"epoch 1 step \d+"):
        train_model(demo_cfg(data_dir, out, *huge), seed=1)
    assert max_abs_diff(before, load_params(out / "TimeSformer_demo_epoch_00001.pdparams")) == 0.0
    assert not (out / "TimeSformer_demo_epoch_00002.pdparams").exists()


def test_cli_amp_on_cpu_warns_and_completes(data_dir, tmp_path):
    args = data_overrides(data_dir) + [f"output_dir={tmp_path}", "epochs=1", "DATASET.batch_size=4",
                                       "GRADIENT_ACCUMULATION.global_batch_size=4", "log_interval=2"]
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "-c", str(DEMO_CONFIG), "--amp", "--amp_level", "O2",
                           "--validate", "-o", *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = proc.stdout
    assert "--amp needs a GPU" in log and "fp32" in log
    assert "epoch:[  1/1  ] train step:1 " in log and "END epoch:1   train" in log and "END epoch:1   val" in log
    for field in ("loss:", "lr:", "top1:", "top5:", "batch_cost:", "reader_cost:", "ips:", "instance/sec eta:"):
        assert field in log
    assert "Already save the best model (top1 acc)" in log
    assert (tmp_path / "TimeSformer_demo_best.pdparams").is_file()
    assert (tmp_path / "TimeSformer_demo_epoch_00001.pdopt").is_file()
    assert "END epoch:1" in (tmp_path / "train.log").read_text()
