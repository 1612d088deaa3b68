"""Timelines with a real exported model (issue 22): each window scores exactly as the same frames cut into a
clip of their own score through the existing predict path; and ``tools/predict.py --timeline`` end to end: a
video cut off in the middle, a pipe fed live by another process, a stalled source, Ctrl-C, a folder with
``--visualize``, flags.

The videos are MJPG AVI: every frame is a JPEG of its own, so the frames of a window cut into its own file
decode to the same pixels as in the long video (checked), and any difference in the scores is the timeline's.
"""

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import K400_CONFIG, REPO, TINY_OVERRIDES
from paddlevideo.deploy.backends.paddle_inference import PaddlePredictor
from paddlevideo.deploy.export import export_model
from paddlevideo.deploy.predict import predict_videos
from paddlevideo.deploy.timeline import TimelineSettings, WindowPlan, predict_timeline, read_timeline_csv
from paddlevideo.loader.builder import build_pipeline
from paddlevideo.loader.decoders import open_video
from paddlevideo.loader.demo_data import write_avi
from paddlevideo.config import get_config, save_config
from test_deploy_export import save_random_weights

CLI_TIMEOUT = 120
NUM_CLASSES = 10  # the tiny model's


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny model (4 frames, 32 px, 10 classes) with random weights, exported; its config file."""
    root = tmp_path_factory.mktemp("timeline_tiny")
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    weights = save_random_weights(cfg, root / "tiny.pdparams")
    exported = export_model(cfg, str(weights), str(root / "export"), fmt="pdmodel")
    return SimpleNamespace(cfg=cfg, config=save_config(cfg, root / "tiny.yaml"), weights=weights,
                           model=exported["model"], params=exported["params"], root=root)


@pytest.fixture(scope="module")
def predictor(tiny):
    return PaddlePredictor(tiny.model, tiny.params)


def frames_of(num_frames, height=48, width=64, seed=0):
    """uint8 RGB ``[N, H, W, 3]``: a bright square moving right over noise (each frame different)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 80, size=(num_frames, height, width, 3), dtype=np.uint8)
    for i in range(num_frames):
        x = (2 * i) % (width - 8)
        frames[i, 10:18, x:x + 8] = (230, 200 - i % 100, 90)
    return frames


def decode(path):
    with open_video(str(path)) as reader:
        return reader.get_frames(np.arange(reader.num_frames))


# ------------------------------------------------------------------ same as scoring each window as its own clip

@pytest.mark.parametrize("fps, window_s, stride_s", [(25, None, None), (30, 1.0, 0.6)])
def test_windows_score_as_their_own_clips_through_the_predict_path(tiny, predictor, tmp_path, fps, window_s, stride_s):
    frames = frames_of(330)
    long_video = tmp_path / "long.avi"
    write_avi(long_video, frames, fps=fps)
    settings = TimelineSettings(window_s=window_s, stride_s=stride_s, batch_size=3, top_k=NUM_CLASSES)
    timeline = predict_timeline(str(long_video), tiny.cfg, predictor, settings)
    assert timeline.complete and timeline.frames_read == 330

    # The reference: each window's frames as a clip file, scored by predict_videos with the config's test
    # pipeline (its clip span set to the window's when the window is not the config's own).
    plan = WindowPlan(tiny.cfg, timeline.settings)
    cfg = tiny.cfg
    if window_s is not None:
        cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES + [
            f"PIPELINE.test.decode.sampling_rate={window_s * 30 / 4}"], show=False)
    clips, decoded = [], decode(long_video)
    for window in timeline.windows:
        start = int(round(window["start_s"] * fps))
        assert start == plan.start(window["index"])
        path = tmp_path / f"window_{window['index']:03d}.avi"
        write_avi(path, frames[start:start + plan.span], fps=fps)
        np.testing.assert_array_equal(decode(path), decoded[start:start + plan.span])  # same pixels
        clips.append(str(path))
    expected_count = sum(1 for k in range(330) if plan.start(k) + plan.span <= 330)
    assert len(clips) == expected_count >= 4

    reference = list(predict_videos(clips, build_pipeline(cfg.PIPELINE.test, "test"), predictor, batch_size=1,
                                    k=NUM_CLASSES))
    for window, result in zip(timeline.windows, reference):
        assert "error" not in result, result
        ours = dict(zip(window["class_ids"], window["scores"]))
        theirs = dict(zip(result["class_ids"], result["scores"]))
        assert sorted(ours) == list(range(NUM_CLASSES))
        np.testing.assert_allclose([ours[c] for c in range(NUM_CLASSES)], [theirs[c] for c in range(NUM_CLASSES)],
                                   rtol=1e-5, atol=1e-7)
        assert window["class_id"] == result["class_ids"][0]

    # cut detection (on by default) only reads the frames: without it every window scores the same
    off = predict_timeline(str(long_video), tiny.cfg, predictor, replace(settings, cuts="off"))
    assert off.cuts is None and timeline.cuts is not None
    assert [w["class_ids"] for w in off.windows] == [w["class_ids"] for w in timeline.windows]
    np.testing.assert_allclose([w["scores"] for w in off.windows], [w["scores"] for w in timeline.windows],
                               rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------ the command line

def predict_cmd(tiny, *args):
    return [sys.executable, str(REPO / "tools" / "predict.py"), "-c", tiny.config, "--model_file", tiny.model,
            "--params_file", tiny.params, *map(str, args)]


def run_predict(tiny, *args, **kwargs):
    return subprocess.run(predict_cmd(tiny, *args), capture_output=True, text=True, cwd=REPO, timeout=CLI_TIMEOUT,
                          **kwargs)


@pytest.fixture(scope="module")
def predict_tool():
    from helpers import load_tool

    return load_tool("tools/predict.py")


def predict_in_process(tool, capsys, tiny, *args):
    """``tools/predict.py`` through ``cli.run`` in this process (no interpreter start-up): a
    ``CompletedProcess``-like namespace with ``returncode``, ``stdout`` and ``stderr``."""
    from paddlevideo.cli import run

    capsys.readouterr()
    argv = predict_cmd(tiny, *args)[2:]
    try:
        code = run("predict.py", tool.main, argv)
    except SystemExit as exit_request:  # argparse's usage errors
        code = exit_request.code
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)


def error_lines(stderr):
    return [line for line in stderr.splitlines() if "error:" in line]


def test_a_video_cut_off_in_the_middle_gives_the_timeline_up_to_the_break(tiny, predictor, tmp_path, predict_tool,
                                                                         capsys):
    frames = frames_of(300)
    whole = tmp_path / "whole.avi"
    write_avi(whole, frames, fps=30)
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:len(data) // 2])
    import av

    with av.open(str(cut)) as container:  # the frames that survive the cut, counted independently
        survived = sum(1 for _ in container.decode(video=0))
    assert 100 < survived < 200

    out = tmp_path / "out"
    done = predict_in_process(predict_tool, capsys, tiny, "-i", cut, "--timeline", out, "--window_s", 0.5,
                              "--stride_s", 0.25)
    assert done.returncode == 1, done.stderr
    errors = error_lines(done.stderr)
    assert len(errors) == 1 and done.stderr.rstrip().endswith(errors[0]), done.stderr
    assert errors[0] == (f"predict.py: error: {cut}: the video breaks off at {survived / 30:.3f} s (frame {survived}); "
                         "its header announces 300 frames (10.000 s)")
    rows = read_timeline_csv(out / "cut.timeline.csv")
    # every window that fits before the break, scored as in the whole video (but for the frame the cut went
    # through: its JPEG is incomplete, so windows sampling it differ)
    full = predict_timeline(str(whole), tiny.cfg, predictor, TimelineSettings(window_s=0.5, stride_s=0.25))
    fitting = [w for w in full.windows if w["end_s"] <= survived / 30 + 1e-9]
    assert len(rows) == len(fitting) > 5
    intact = [w for w in fitting if w["end_s"] <= (survived - 1) / 30 + 1e-9]
    assert [r["class_id"] for r in rows[:len(intact)]] == [w["class_id"] for w in intact]
    np.testing.assert_allclose([r["score"] for r in rows[:len(intact)]], [w["score"] for w in intact], rtol=1e-5)
    summary = json.loads((out / "cut.segments.json").read_text())
    assert not summary["complete"] and summary["error"] in errors[0]


FEEDER = r'''
import sys, time
import av, numpy as np
frames = np.load(sys.argv[1])
pause_after = int(sys.argv[2])
out = av.open(sys.stdout.buffer, "w", format="matroska", options={"flush_packets": "1"})
stream = out.add_stream("mjpeg", rate=30)
stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuvj420p"
for i, frame in enumerate(frames):
    if i == pause_after:
        sys.stderr.write("paused\n"); sys.stderr.flush()
        if sys.stdin.readline().strip() != "go":  # the test says when to go on
            sys.exit(3)
    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        out.mux(packet)
for packet in stream.encode():
    out.mux(packet)
out.close()
'''


def _readline(stream, timeout):
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else None


def test_a_pipe_fed_by_another_process_is_read_live_and_ends_when_the_writer_closes(tiny, tmp_path):
    np.save(tmp_path / "frames.npy", frames_of(150))
    (tmp_path / "feeder.py").write_text(FEEDER)
    feeder = subprocess.Popen([sys.executable, str(tmp_path / "feeder.py"), str(tmp_path / "frames.npy"), "90"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False)
    reader = subprocess.Popen(predict_cmd(tiny, "-i", "-", "--timeline", tmp_path / "out", "--window_s", 0.5,
                                          "--stride_s", 0.25), stdin=feeder.stdout, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=REPO, text=True)
    feeder.stdout.close()  # the reader holds the pipe now
    try:
        first = _readline(reader.stdout, CLI_TIMEOUT)
        # a window was scored and printed while the writer is still paused after 90 of 150 frames: read live
        assert first and first.startswith("0.000-0.500 s\t"), first
        assert feeder.poll() is None
        feeder.stdin.write(b"go\n")
        feeder.stdin.flush()
        rest, errors = reader.communicate(timeout=CLI_TIMEOUT)
        assert feeder.wait(timeout=CLI_TIMEOUT) == 0
    finally:
        for proc in (feeder, reader):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert reader.returncode == 0, errors
    lines = [first.rstrip("\n")] + rest.splitlines()
    window_lines, summary = lines[:-1], lines[-1]
    expected = sum(1 for k in range(150) if round(k * 7.5) + 15 <= 150)  # 15-frame windows every 7.5 frames
    assert len(window_lines) == expected and summary.startswith(f"-: {expected} windows")
    assert len(read_timeline_csv(tmp_path / "out" / "stdin.timeline.csv")) == expected


STALLER = r'''
import sys, time
import av, numpy as np
frames = np.load(sys.argv[2])
out = av.open(sys.argv[1], "w", format="matroska", options={"flush_packets": "1"})
stream = out.add_stream("mjpeg", rate=30)
stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuvj420p"
for frame in frames:
    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        out.mux(packet)
sys.stderr.write("stalling\n"); sys.stderr.flush()
time.sleep(float(sys.argv[3]))  # the FIFO stays open: a camera that stopped sending
'''


@pytest.fixture
def stalled_fifo(tmp_path):
    """A FIFO whose writer sends 60 frames, then keeps it open without sending more."""
    fifo = tmp_path / "camera.fifo"
    os.mkfifo(fifo)
    np.save(tmp_path / "frames.npy", frames_of(60))
    (tmp_path / "staller.py").write_text(STALLER)
    writer = subprocess.Popen([sys.executable, str(tmp_path / "staller.py"), str(fifo), str(tmp_path / "frames.npy"),
                               "60"], stderr=subprocess.PIPE)
    yield fifo
    writer.kill()
    writer.wait()


def test_a_stalled_source_ends_with_one_line_after_timeout_s(tiny, tmp_path, stalled_fifo):
    began = time.monotonic()
    done = run_predict(tiny, "-i", stalled_fifo, "--timeline", tmp_path / "out", "--window_s", 0.5,
                       "--timeout_s", 1)
    assert time.monotonic() - began < 40  # start-up, 2 s of frames, then 1 s without one
    assert done.returncode == 1, done.stderr
    errors = error_lines(done.stderr)
    assert len(errors) == 1 and f"{stalled_fifo}: no frame for 1 s (--timeout_s); stopped at" in errors[0]
    assert len(read_timeline_csv(tmp_path / "out" / "camera.timeline.csv")) >= 3


def test_ctrl_c_writes_what_was_scored_and_exits_130(tiny, tmp_path, stalled_fifo):
    proc = subprocess.Popen(predict_cmd(tiny, "-i", stalled_fifo, "--timeline", tmp_path / "out", "--window_s", 0.5,
                                        "--timeout_s", 60), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            text=True)
    try:
        assert _readline(proc.stdout, CLI_TIMEOUT), "no window line"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.rstrip().splitlines()[-1] == "predict.py: interrupted" and "Traceback" not in err
    rows = read_timeline_csv(tmp_path / "out" / "camera.timeline.csv")
    summary = json.loads((tmp_path / "out" / "camera.segments.json").read_text())
    assert len(rows) == summary["num_windows"] >= 1 and summary["stopped"] and not summary["complete"]


def test_a_folder_with_visualize_writes_each_timeline_and_its_annotated_video(tiny, tmp_path, predict_tool, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_avi(videos / "a.avi", frames_of(90, seed=1), fps=30)
    write_avi(videos / "b.avi", frames_of(45, seed=2), fps=30)
    (videos / "c.mp4").write_bytes(b"not a video")
    done = predict_in_process(predict_tool, capsys, tiny, "-i", videos, "--timeline", tmp_path / "out", "--window_s",
                              1, "--smooth", 3, "--visualize", tmp_path / "vis", "--output", "json")
    assert done.returncode == 1
    errors = error_lines(done.stderr)
    assert len(errors) == 2 and "c.mp4" in errors[0] and errors[1].endswith("1 of 3 video(s) have no complete timeline")
    summaries = [json.loads(line) for line in done.stdout.splitlines()]
    assert [os.path.basename(s["source"]) for s in summaries] == ["a.avi", "b.avi"]
    assert [s["windows"] for s in summaries] == [5, 2]  # 30-frame windows every 15 frames
    header = (tmp_path / "out" / "a.timeline.csv").read_text().splitlines()[0]
    assert header.startswith("start_s,end_s,class_id,class_name,score,top2_class_id") and header.endswith(
        "raw_class_id,raw_score,crosses_cut")
    assert sorted(os.listdir(tmp_path / "vis")) == ["a.avi.mp4", "b.avi.mp4"]
    with open_video(str(tmp_path / "vis" / "a.avi.mp4")) as reader:
        assert reader.num_frames == 90


@pytest.mark.parametrize("args, code, message", [
    (["--smooth", "0"], 1, "--smooth must be a whole number >= 1, got 0"),
    (["--window_s", "-2"], 1, "--window_s must be a number > 0, got -2.0"),
    (["--cuts", "sideways"], 2, "argument --cuts: invalid choice: 'sideways' (choose from 'auto', 'off')"),
])
def test_bad_timeline_flags_are_one_line(tiny, tmp_path, args, code, message, predict_tool, capsys):
    write_avi(tmp_path / "v.avi", frames_of(10), fps=30)
    done = predict_in_process(predict_tool, capsys, tiny, "-i", tmp_path / "v.avi", "--timeline", tmp_path / "out",
                              *args)
    assert done.returncode == code and error_lines(done.stderr) == [f"predict.py: error: {message}"], done.stderr


def test_live_sources_and_timeline_flags_need_timeline(tiny, predict_tool, capsys):
    for args in (["-i", "0"], ["-i", "rtsp://camera/live"], ["-i", "x.avi", "--smooth", "3"],
                 ["-i", "x.avi", "--cuts", "off"]):
        done = predict_in_process(predict_tool, capsys, tiny, *args)
        assert done.returncode == 2 and "--timeline" in error_lines(done.stderr)[-1], done.stderr
