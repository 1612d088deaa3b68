"""Training records: JSON lines, VisualDL logs read back with VisualDL's own reader, and a
training_curves.png whose plotted numbers are the records'."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from paddlevideo.visualization.curves import read_curve_data
from paddlevideo.visualization.records import TrainingRecorder, read_records


def fake_run(recorder, epochs=3, steps_per_epoch=4, seed=0):
    """Log a made-up run; returns what was logged: ``{'step': [(step, dict)], 'epoch': [(epoch, dict)]}``."""
    rng = np.random.default_rng(seed)
    logged = {"step": [], "epoch": []}
    step = 0
    for epoch in range(1, epochs + 1):
        for _ in range(steps_per_epoch):
            step += 1
            values = {"loss": float(rng.uniform(0.1, 2.0)), "top1": float(rng.uniform()),
                      "top5": float(rng.uniform()), "lr": float(1e-3 * rng.uniform()), "ips": float(rng.uniform(50, 90))}
            recorder.log_step(step, **values)
            logged["step"].append((step, values))
        values = {"loss": float(rng.uniform(0.1, 2.0)), "top1": float(rng.uniform()), "top5": float(rng.uniform())}
        recorder.log_epoch(epoch, split="val", **values)
        logged["epoch"].append((epoch, values))
        recorder.draw_curves()
    return logged


def visualdl_scalars(folder):
    """``{tag: [(step, value)]}`` from the one vdlrecords file in ``folder``, read by VisualDL's LogReader."""
    from visualdl import LogReader

    files = [name for name in os.listdir(folder) if name.startswith("vdlrecords.")]
    assert len(files) == 1, files
    reader = LogReader(file_path=os.path.join(folder, files[0]))
    return {tag: [(item.id, item.value) for item in reader.get_data("scalar", tag)]
            for tag in reader.get_tags()["scalar"]}


def test_records_visualdl_and_png_hold_the_logged_numbers(tmp_path):
    with TrainingRecorder(tmp_path, use_visualdl=True) as recorder:
        logged = fake_run(recorder)

    # JSON lines: every value, in order
    records = read_records(tmp_path / "training_records.jsonl")
    steps = [r for r in records if r["kind"] == "step"]
    assert [(r["step"], {k: r[k] for k in ("loss", "top1", "top5", "lr", "ips")}) for r in steps] == logged["step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [(r["epoch"], {k: r[k] for k in ("loss", "top1", "top5")}) for r in epochs] == logged["epoch"]

    # VisualDL's reader: tags, steps and values (stored as float32)
    scalars = visualdl_scalars(tmp_path / "vdl")
    for name in ("loss", "top1", "top5", "lr", "ips"):
        expected = [(step, values[name]) for step, values in logged["step"]]
        got = scalars[f"train/{name}"]
        assert [s for s, _ in got] == [s for s, _ in expected]
        np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], rtol=1e-6)
    for name in ("loss", "top1", "top5"):
        got = scalars[f"val/{name}"]
        assert [s for s, _ in got] == [1, 2, 3]
        np.testing.assert_allclose([v for _, v in got], [values[name] for _, values in logged["epoch"]], rtol=1e-6)

    # the PNG: a real PNG, and the lines drawn in it are the records
    png = tmp_path / "training_curves.png"
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as image:
        image.verify()
    drawn = read_curve_data(png)
    step_x = [float(s) for s, _ in logged["step"]]
    for panel, name in (("training loss/loss", "loss"), ("training accuracy/top-1", "top1"),
                        ("training accuracy/top-5", "top5"), ("learning rate/lr", "lr")):
        assert drawn[panel]["x"] == step_x
        assert drawn[panel]["y"] == [values[name] for _, values in logged["step"]]
    assert drawn["validation/loss"]["x"] == [1.0, 2.0, 3.0]
    assert drawn["validation/loss"]["y"] == [values["loss"] for _, values in logged["epoch"]]
    assert drawn["validation/top-1"]["y"] == [values["top1"] for _, values in logged["epoch"]]


def test_resume_keeps_the_records_up_to_the_checkpoint_and_replays_them(tmp_path):
    with TrainingRecorder(tmp_path, use_visualdl=True) as recorder:
        logged = fake_run(recorder, epochs=3)
    # the run resumes from its epoch-2 checkpoint (step 8): epoch 3's records are dropped, then re-logged
    with TrainingRecorder(tmp_path, use_visualdl=True, resume_from=(2, 8)) as recorder:
        assert [r.get("step", r.get("epoch")) for r in recorder.records] == [1, 2, 3, 4, 1, 5, 6, 7, 8, 2]
        recorder.log_step(9, loss=0.5)
        recorder.log_epoch(3, loss=0.25, top1=0.75)
    records = read_records(tmp_path / "training_records.jsonl")
    assert [r["step"] for r in records if r["kind"] == "step"] == list(range(1, 10))
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2, 3]
    scalars = visualdl_scalars(tmp_path / "vdl")  # one log file: the old one was replayed, then removed
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, 10))
    np.testing.assert_allclose([v for _, v in scalars["train/loss"]][:8], [v["loss"] for _, v in logged["step"][:8]],
                               rtol=1e-6)
    assert scalars["val/top1"][-1] == (3, 0.75)


def test_a_fresh_run_replaces_old_records(tmp_path):
    with TrainingRecorder(tmp_path) as recorder:
        fake_run(recorder, epochs=1)
    with TrainingRecorder(tmp_path) as recorder:
        recorder.log_step(1, loss=1.0)
    assert read_records(tmp_path / "training_records.jsonl") == [{"kind": "step", "step": 1, "loss": 1.0}]


def test_non_finite_values_are_null_and_gaps(tmp_path):
    with TrainingRecorder(tmp_path) as recorder:
        recorder.log_step(1, loss=1.0)
        recorder.log_step(2, loss=float("nan"))
        recorder.log_step(3, loss=0.5)
        recorder.draw_curves()
        with pytest.raises(TypeError, match="'loss' must be a number"):
            recorder.log_step(4, loss="high")
    lines = (tmp_path / "training_records.jsonl").read_text().splitlines()
    assert json.loads(lines[1]) == {"kind": "step", "step": 2, "loss": None}
    y = read_curve_data(tmp_path / "training_curves.png")["training loss/loss"]["y"]
    assert y[0] == 1.0 and math.isnan(y[1]) and y[2] == 0.5


def test_disabled_recorder_writes_nothing_and_a_torn_last_line_is_dropped(tmp_path):
    recorder = TrainingRecorder(tmp_path / "rank1", use_visualdl=True, enabled=False)
    recorder.log_step(1, loss=1.0)
    recorder.log_epoch(1, loss=1.0)
    assert recorder.draw_curves() is None
    recorder.close()
    assert not (tmp_path / "rank1").exists()
    path = tmp_path / "training_records.jsonl"
    path.write_text('{"kind": "step", "step": 1, "loss": 1.0}\n{"kind": "st')
    assert read_records(path) == [{"kind": "step", "step": 1, "loss": 1.0}]


def test_importing_the_package_loads_no_plotting_or_dashboard_library():
    code = ("import sys, paddlevideo, paddlevideo.visualization.records, paddlevideo.visualization.curves, "
            "paddlevideo.visualization.heatmap, paddlevideo.visualization.report, paddlevideo.visualization.annotate, "
            "paddlevideo.visualization.attention, paddlevideo.visualization.rollout, paddlevideo.visualization.views; "
            "print(sorted(m for m in ('matplotlib', 'visualdl', 'PIL', 'cv2', 'paddle') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


DEAD_WRITER_SCRIPT = """
import sys, time
from visualdl.writer import record_writer
from paddlevideo.visualization.records import TrainingRecorder

recorder = TrainingRecorder(sys.argv[1], use_visualdl=True)

def broken_flush(self):
    raise OSError(28, "No space left on device")

record_writer.RecordWriter.flush = broken_flush  # VisualDL's thread dies at its next periodic flush
worker = recorder._writer._file_writer._async_writer._worker
start, step = time.time(), 0
while time.time() - start < 60 and (worker.is_alive() or step < 200):  # past its death: 11 writes fill its queue
    step += 1
    recorder.log_step(step, loss=1.0 / step)
    time.sleep(0.05 if worker.is_alive() else 0.0)
assert not worker.is_alive(), "the fault was not injected"
recorder.log_epoch(1, loss=0.5, top1=0.5)
recorder.draw_curves()
recorder.close()
print("finished")
"""


def test_a_dead_visualdl_writer_does_not_hang_training(tmp_path):
    """VisualDL writes from a background thread; if it dies (here: a full disk during its flush), its queue
    fills and every further write would block forever. The recorder notices, warns once and goes on."""
    done = subprocess.run([sys.executable, "-c", DEAD_WRITER_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    assert "finished" in done.stdout
    assert done.stderr.count("VisualDL's log writer stopped") == 1
    records = read_records(tmp_path / "training_records.jsonl")  # the records are all there
    assert records[-1] == {"kind": "epoch", "split": "val", "epoch": 1, "loss": 0.5, "top1": 0.5}
    assert [r["step"] for r in records[:-1]] == list(range(1, len(records)))


def test_the_visualdl_thread_is_found(tmp_path):
    """The hang guard looks at VisualDL's writer thread through private attributes: fail loudly if they move."""
    from paddlevideo.visualization.records import _visualdl_worker

    recorder = TrainingRecorder(tmp_path, use_visualdl=True)
    try:
        worker = _visualdl_worker(recorder._writer)
        assert worker is not None and worker.is_alive()
    finally:
        recorder.close()
