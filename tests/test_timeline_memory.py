"""Acceptance (issue 22): a timeline's memory does not grow with the video's length.

How it is measured: ``tools/predict.py --timeline`` runs in a subprocess on a 1-minute and on a 10-minute
video (96 x 96 px MJPG at 10 fps: 600 and 6000 frames; one 1 s window per second, so 60 and 600 windows)
with the tiny exported model, and the child's peak resident memory is its own ``VmHWM`` (read at its exit by
a small wrapper: ``ru_maxrss`` would not do, Linux carries it over from the forking test process across exec). The 10-minute run must peak within 10 % of the 1-minute one (each the lower of two runs, see ``RUNS``). Small frames keep this fast,
and the bar can still fail: holding the 10-minute video's decoded frames (166 MB) would add far more than
10 % of a run's peak (checked below).
"""

import subprocess
import sys

import numpy as np
import pytest

from conftest import K400_CONFIG, REPO, TINY_OVERRIDES

FPS, SIZE = 10, 96
# Each length runs twice and keeps its lower peak. On a loaded machine the start-up peak of one run (the
# predictor's first batches, before the stream settles; RSS is flat after it, sampled every 0.5 s) varies
# by up to ~25 % between runs of the same video; growth with the length would show in both runs.
RUNS = 2


def write_video(path, seconds):
    """A square moving over a grey gradient, ``seconds`` long, written frame by frame (MJPG AVI)."""
    import cv2

    frames = int(seconds * FPS)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(FPS), (SIZE, SIZE))
    assert writer.isOpened()
    base = np.tile(np.linspace(40, 120, SIZE, dtype=np.uint8)[None, :, None], (SIZE, 1, 3))
    try:
        for i in range(frames):
            frame = base.copy()
            x = (3 * i) % (SIZE - 16)
            frame[40:56, x:x + 16] = (200, 90 + i % 100, 60)
            writer.write(frame)
    finally:
        writer.release()
    return frames


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from paddlevideo.deploy.export import export_model
    from paddlevideo.config import get_config
    from paddlevideo.config import save_config

    root = tmp_path_factory.mktemp("timeline_memory")
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    paths = export_model(cfg, None, str(root / "export"), random_init=True)
    return save_config(cfg, root / "tiny.yaml"), paths["model"], paths["params"]


# Runs a tool as __main__ in this fresh process and, whatever it exits with, writes the process's VmHWM
# (peak resident memory of this process's own address space) to argv[1].
PEAK_WRAPPER = r"""
import os, runpy, sys
out, script = sys.argv[1], sys.argv[2]
sys.argv = [script] + sys.argv[3:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exit:
    code = exit.code if isinstance(exit.code, int) else 1
finally:
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(out, "w") as f:
        f.write(hwm)
sys.exit(code)
"""


def peak_rss_mb(script, args, tmp_path):
    """Run ``python script args``; return (exit code, peak RSS of that process in MB, stderr)."""
    out = tmp_path / "vmhwm.txt"
    done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, str(out), script, *args], cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600)
    return done.returncode, int(out.read_text()) / 1024.0, done.stderr


def test_peak_memory_of_a_10_minute_timeline_is_that_of_a_1_minute_one(exported, tmp_path):
    config, model, params = exported
    peaks = {}
    for minutes in (1, 10):
        video = tmp_path / f"{minutes}min.avi"
        frames = write_video(video, 60 * minutes)
        runs = []
        for _ in range(RUNS):
            code, peak, stderr = peak_rss_mb("tools/predict.py", [
                "-c", config, "--model_file", model, "--params_file", params, "-i", str(video),
                "--timeline", str(tmp_path / "out"), "--window_s", "1", "--stride_s", "1", "--batch_size", "8"],
                tmp_path)
            assert code == 0, stderr[-2000:]
            rows = (tmp_path / "out" / f"{minutes}min.timeline.csv").read_text().splitlines()
            assert len(rows) == 1 + 60 * minutes  # every window scored
            runs.append(peak)
        peaks[minutes] = min(runs)
    print(f"peak RSS: 1 min {peaks[1]:.0f} MB, 10 min {peaks[10]:.0f} MB")
    assert peaks[10] <= 1.10 * peaks[1], peaks
    # the bar has teeth: the 10-minute video's frames alone would exceed it
    assert frames * SIZE * SIZE * 3 / 2 ** 20 > 0.10 * peaks[1] * 1.5, (frames, peaks)
