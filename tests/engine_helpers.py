"""Helpers shared by the engine tests: a tiny generated demo dataset and configs for it."""

import logging
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"

# Linear in the gradients (unlike Adam), so accumulated / all-reduced gradients can be compared to 1e-5.
MOMENTUM = ("OPTIMIZER={name: Momentum, momentum: 0.9, use_nesterov: True, weight_decay: {name: L2, value: 0.0001}, "
            "learning_rate: {name: MultiStepDecay, learning_rate: 0.05, milestones: [1], gamma: 0.1}}")


def make_data(folder, num_train=16, num_val=8):
    from paddlevideo.loader.demo_data import make_demo_dataset

    return make_demo_dataset(str(folder), num_train=num_train, num_val=num_val, seed=0, num_frames=8, size=32)


def data_overrides(folder):
    folder = str(folder)
    out = []
    for mode, name in (("train", "train"), ("valid", "val"), ("test", "val")):
        out += [f"DATASET.{mode}.data_prefix={folder}", f"DATASET.{mode}.file_path={os.path.join(folder, name + '.list')}"]
    return out


def demo_cfg(data_dir, out_dir, *extra):
    from paddlevideo.config import get_config

    return get_config(str(DEMO_CONFIG), data_overrides(data_dir) + [f"output_dir={out_dir}", "log_interval=1",
                                                                   *extra], show=False)


def load_params(path):
    from paddlevideo.common.save_load import load

    return {k: np.asarray(v) for k, v in load(str(path)).items()}


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def run_main(args, timeout=300, env=None, **popen):
    """Run ``main.py ARGS`` in a subprocess; a run that outlives ``timeout`` seconds is killed and fails the
    test as a hang (with its output so far)."""
    import subprocess
    import sys

    cmd = [sys.executable, str(REPO / "main.py"), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, **popen)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"main.py hung: no exit within {timeout} s\n{out[-3000:]}\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def error_line(proc):
    """The last stderr line of a run that must end with one ``main.py: error: ...`` line and no traceback."""
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert lines and lines[-1].startswith("main.py: error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[-1]


def write_video(path, num_frames=8, height=32, width=32, fps=30, seed=0):
    """An MJPG AVI of random frames (uint8 RGB ``[num_frames, height, width, 3]``); returns ``path``."""
    from paddlevideo.loader.demo_data import write_avi

    rng = np.random.default_rng(seed)
    write_avi(str(path), rng.integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8), fps)
    return path


def write_audio_only(path):
    """An MP4 with one AAC audio stream and no video stream (written with PyAV); returns ``path``."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture
def capture_logs(caplog):
    """caplog on the project logger itself (an entry point may have stopped it propagating to root).

    A fixture: a test module that imports it can use it."""
    logger = logging.getLogger("paddlevideo")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="paddlevideo")
    yield caplog
    logger.removeHandler(caplog.handler)
