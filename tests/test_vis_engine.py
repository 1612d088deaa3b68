"""The engine feeds the training records: what a run's train.log says is what its training_records.jsonl, its
VisualDL log (read back with VisualDL's own reader) and its training_curves.png hold; VisualDL only when
switched on; the records survive an exception in training and continue on resume."""

import re
import subprocess
import sys
import threading

import numpy as np
import pytest

from engine_helpers import DEMO_CONFIG, REPO, capture_logs, data_overrides, demo_cfg, make_data, run_main  # noqa: F401
from paddlevideo.visualization.curves import read_curve_data
from paddlevideo.visualization.records import read_records
from test_vis_records import visualdl_scalars

BATCHES = 4  # 16 clips, batch 4: iterations per epoch
SMALL = ["DATASET.batch_size=4", "GRADIENT_ACCUMULATION.global_batch_size=4", "log_interval=1",
         "OPTIMIZER.learning_rate.warmup_steps=3"]
STEP_LINE = re.compile(r"epoch:\[\s*(\d+)/\s*\d+\s*\] train step:(\d+)\s+loss: (\S+) lr: (\S+) top1: (\S+) "
                       r"top5: (\S+) .* ips: (\S+) instance/sec")
VAL_LINE = re.compile(r"END epoch:(\d+)\s+val\s+loss_avg: (\S+) top1_avg: (\S+) top5_avg: (\S+)")
STEP_KEYS, VAL_KEYS = ("loss", "lr", "top1", "top5", "ips"), ("loss", "top1", "top5")
DECIMALS = {"loss": 5, "lr": 6, "top1": 5, "top5": 5, "ips": 5}  # as meters.train_step_line prints them


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    make_data(folder, num_train=16, num_val=8)
    return folder


def parse_log(text):
    """``({iteration: {name: value}}, {epoch: {name: value}})`` from train.log lines (iteration as the records
    count it: ``(epoch - 1) * BATCHES + step + 1``)."""
    steps, epochs = {}, {}
    for match in STEP_LINE.finditer(text):
        epoch, step = int(match[1]), int(match[2])
        steps[(epoch - 1) * BATCHES + step + 1] = dict(zip(STEP_KEYS, map(float, match.groups()[2:])))
    for match in VAL_LINE.finditer(text):
        epochs[int(match[1])] = dict(zip(VAL_KEYS, map(float, match.groups()[1:])))
    return steps, epochs


def assert_printed(value, printed, decimals, rel=0.0):
    """``value`` rounds to the number the log printed (``rel``: extra relative error, e.g. float32 storage)."""
    assert abs(value - printed) <= 0.5 * 10 ** -decimals + 1e-12 + rel * abs(value), (value, printed)


def check_records_against_log(records, log_steps, log_epochs):
    steps = [r for r in records if r["kind"] == "step"]
    assert [r["step"] for r in steps] == sorted(log_steps)
    for record in steps:
        for name in STEP_KEYS:
            assert_printed(record[name], log_steps[record["step"]][name], DECIMALS[name])
    vals = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in vals] == sorted(log_epochs) and all(r["split"] == "val" for r in vals)
    for record in vals:
        for name in VAL_KEYS:
            assert_printed(record[name], log_epochs[record["epoch"]][name], 5)


def test_cli_run_records_visualdl_and_curves_equal_train_log(data_dir, tmp_path):
    out = tmp_path / "run"
    proc = run_main(["-c", str(DEMO_CONFIG), "--validate", "--use_vdl", "-o", *data_overrides(data_dir),
                     f"output_dir={out}", "epochs=2", *SMALL])
    assert proc.returncode == 0, proc.stderr[-3000:]
    log_steps, log_epochs = parse_log((out / "train.log").read_text())
    assert sorted(log_steps) == list(range(1, 2 * BATCHES + 1)) and sorted(log_epochs) == [1, 2]

    records = read_records(out / "training_records.jsonl")
    check_records_against_log(records, log_steps, log_epochs)

    scalars = visualdl_scalars(out / "vdl")  # VisualDL's LogReader
    assert set(scalars) == {f"train/{k}" for k in STEP_KEYS} | {f"val/{k}" for k in VAL_KEYS}
    for name in STEP_KEYS:
        assert [s for s, _ in scalars[f"train/{name}"]] == sorted(log_steps)
        for step, value in scalars[f"train/{name}"]:
            assert_printed(value, log_steps[step][name], DECIMALS[name], rel=1e-6)  # stored as float32
    for name in VAL_KEYS:
        assert [s for s, _ in scalars[f"val/{name}"]] == [1, 2]
        for epoch, value in scalars[f"val/{name}"]:
            assert_printed(value, log_epochs[epoch][name], 5, rel=1e-6)

    png = out / "training_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as image:
        image.verify()
    drawn = read_curve_data(png)
    for panel, name in (("training loss/loss", "loss"), ("training accuracy/top-1", "top1"),
                        ("training accuracy/top-5", "top5"), ("learning rate/lr", "lr")):
        assert drawn[panel]["x"] == [float(s) for s in sorted(log_steps)]
        for x, y in zip(drawn[panel]["x"], drawn[panel]["y"]):
            assert_printed(y, log_steps[int(x)][name], DECIMALS[name])
    for panel, name in (("validation/loss", "loss"), ("validation/top-1", "top1")):
        assert drawn[panel]["x"] == [1.0, 2.0]
        for x, y in zip(drawn[panel]["x"], drawn[panel]["y"]):
            assert_printed(y, log_epochs[int(x)][name], 5)


def test_without_visualdl_nothing_imports_it_and_the_curves_are_still_drawn(data_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["-c", str(DEMO_CONFIG), "-o", *data_overrides(data_dir), f"output_dir={out}", "epochs=1", *SMALL]
    code = f"import sys, main; main.main({argv!r}); print('visualdl imported:', 'visualdl' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "visualdl imported: False" in proc.stdout
    assert not (out / "vdl").exists()
    log_steps, _ = parse_log((out / "train.log").read_text())
    check_records_against_log(read_records(out / "training_records.jsonl"), log_steps, {})
    assert [int(x) for x in read_curve_data(out / "training_curves.png")["training loss/loss"]["x"]] == \
        sorted(log_steps)


def test_config_key_turns_visualdl_on_and_a_missing_visualdl_is_one_line(data_dir, tmp_path, monkeypatch):
    from paddlevideo.tasks.train import train_model
    from paddlevideo.common.errors import UserError

    train_model(demo_cfg(data_dir, tmp_path / "on", "epochs=1", "use_visualdl=True", *SMALL), seed=1)
    scalars = visualdl_scalars(tmp_path / "on" / "vdl")
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, BATCHES + 1))

    monkeypatch.setitem(sys.modules, "visualdl", None)  # what `import visualdl` meets when it is not installed
    with pytest.raises(UserError) as err:
        train_model(demo_cfg(data_dir, tmp_path / "off", "epochs=1", *SMALL), seed=1, use_visualdl=True)
    assert "pip install visualdl" in str(err.value) and "\n" not in str(err.value)


def test_an_exception_in_training_keeps_the_records_and_ends_visualdl(data_dir, tmp_path, capture_logs):
    from paddlevideo.tasks.train import TrainingDiverged, train_model

    out = tmp_path / "run"
    threads = set(threading.enumerate())
    huge = ["epochs=2", *SMALL[:3], "OPTIMIZER={name: Momentum, momentum: 0.9, learning_rate: 1e30}"]
    with pytest.raises(TrainingDiverged):
        train_model(demo_cfg(data_dir, out, *huge), seed=1, use_visualdl=True)
    assert [t for t in threading.enumerate() if t not in threads and t.is_alive()] == []  # VisualDL's writer ended
    log_steps, _ = parse_log(capture_logs.text)
    assert log_steps, "the first step's loss is finite: one log line before the NaN"
    records = read_records(out / "training_records.jsonl")
    check_records_against_log(records, log_steps, {})
    assert [s for s, _ in visualdl_scalars(out / "vdl")["train/loss"]] == sorted(log_steps)
    assert read_curve_data(out / "training_curves.png")["training loss/loss"]["x"] == [float(s) for s in
                                                                                       sorted(log_steps)]


def test_resume_continues_the_records(data_dir, tmp_path, capture_logs):
    from paddlevideo.tasks.train import train_model

    out, common = tmp_path / "run", ["epochs=3", "save_interval=1", *SMALL]
    train_model(demo_cfg(data_dir, out, *common), validate=True, seed=2, use_visualdl=True,
                max_iters=2 * BATCHES + 2)  # epochs 1-2 saved, 2 iterations of epoch 3 logged and lost
    first = read_records(out / "training_records.jsonl")
    assert [r["step"] for r in first if r["kind"] == "step"] == list(range(1, 2 * BATCHES + 3))
    capture_logs.clear()
    train_model(demo_cfg(data_dir, out, *common), validate=True, seed=2, use_visualdl=True, resume=True)
    log_steps, log_epochs = parse_log(capture_logs.text)
    assert sorted(log_steps) == list(range(2 * BATCHES + 1, 3 * BATCHES + 1)) and sorted(log_epochs) == [3]

    records = read_records(out / "training_records.jsonl")
    steps = [r for r in records if r["kind"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, 3 * BATCHES + 1))  # one record per iteration
    assert steps[:2 * BATCHES] == [r for r in first if r["kind"] == "step"][:2 * BATCHES]
    check_records_against_log([r for r in records if r.get("step", 0) > 2 * BATCHES or r.get("epoch", 0) > 2],
                              log_steps, log_epochs)
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2, 3]
    scalars = visualdl_scalars(out / "vdl")  # the kept records replayed: one continuous run
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, 3 * BATCHES + 1))
    np.testing.assert_allclose([v for _, v in scalars["train/loss"]], [r["loss"] for r in steps], rtol=1e-6)
    assert [s for s, _ in scalars["val/top1"]] == [1, 2, 3]
