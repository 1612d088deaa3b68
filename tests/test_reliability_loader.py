"""The loader cannot hang: bad clips are skipped and named inside the dataset, any other loader failure ends the
run with one line and a non-zero exit. Every case runs in a subprocess with a timeout: a hang fails the test."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from engine_helpers import (DEMO_CONFIG, REPO, data_overrides, error_line, run_main, write_audio_only,
                            write_video)

ONE_EPOCH = ["epochs=1", "DATASET.batch_size=4", "GRADIENT_ACCUMULATION.global_batch_size=4", "log_interval=1"]
BAD = ("wide.avi", "empty.avi", "audio.mp4")  # a 4000x100 clip, a zero-byte file, an audio-only file


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """9 readable 32x32 clips and the three bad ones (12: whole batches of 4, so train draws each once)."""
    folder = tmp_path_factory.mktemp("mixed")
    good = [write_video(folder / f"good{i}.avi", seed=i).name for i in range(9)]
    write_video(folder / "wide.avi", height=100, width=4000)
    (folder / "empty.avi").write_bytes(b"")
    write_audio_only(folder / "audio.mp4")
    lines = [f"{name} {i % 4}" for i, name in enumerate(good[:3] + [BAD[0]] + good[3:6] + [BAD[1]] + good[6:] +
                                                          [BAD[2]])]
    for name in ("train.list", "val.list"):
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def broken_only(folder):
    """A data folder whose train and val lists name only existing, unreadable files."""
    for i in range(6):
        (folder / f"bad{i}.avi").write_bytes(b"\x00" * (i * 37))
    for name in ("train.list", "val.list"):
        (folder / name).write_text("".join(f"bad{i}.avi {i % 4}\n" for i in range(6)))
    return folder


@pytest.mark.parametrize("workers", [0, 2])
def test_train_skips_mixed_sizes_empty_and_audio_only(mixed, tmp_path, workers):
    proc = run_main(["-c", str(DEMO_CONFIG), "-o", *data_overrides(mixed), f"output_dir={tmp_path}",
                     f"DATASET.num_workers={workers}", *ONE_EPOCH], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "END epoch:1" in log and (tmp_path / "TimeSformer_demo_epoch_00001.pdparams").is_file()
    for name in BAD:  # each bad file is drawn once per epoch, named, and replaced
        assert f"skipping video {mixed / name}" in log, name
    assert "shape [3, 8, 100, 4000], not the expected [3, 8, 32, 32]" in log  # the odd clip's message
    assert "Traceback" not in log


@pytest.mark.parametrize("workers", [0, 2])
def test_test_excludes_and_counts_bad_clips(mixed, tmp_path, workers):
    weights = tmp_path / "w.pdparams"
    _demo_weights(weights)
    proc = run_main(["--test", "-c", str(DEMO_CONFIG), "-w", str(weights), "-o", *data_overrides(mixed),
                     f"output_dir={tmp_path}", f"DATASET.num_workers={workers}", "DATASET.test_batch_size=3"],
                    timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the test pipeline crops 3 views of 32 px along the long side, so the 100x4000 clip is a valid input here
    assert "10 clips scored, 2 skipped" in proc.stdout
    report = [line for line in proc.stdout.splitlines() if "could not be read and were skipped" in line]
    assert len(report) == 1 and "empty.avi" in report[0] and "audio.mp4" in report[0], proc.stdout[-3000:]
    assert "wide.avi" not in report[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_train_where_every_clip_is_broken_ends_with_one_line(tmp_path, workers):
    data = broken_only(tmp_path)
    began = time.time()
    proc = run_main(["-c", str(DEMO_CONFIG), "-o", *data_overrides(data), f"output_dir={tmp_path / 'out'}",
                     f"DATASET.num_workers={workers}", *ONE_EPOCH], timeout=240)
    line = error_line(proc)
    assert "videos in a row failed to load" in line and "bad" in line and "train.list" in line
    assert time.time() - began < 200
    assert not list((tmp_path / "out").glob("*.pdparams")) and not (tmp_path / "out" / "run.lock").exists()


def test_test_where_no_clip_is_scored_is_an_error(tmp_path):
    data = broken_only(tmp_path)
    weights = tmp_path / "w.pdparams"
    _demo_weights(weights)
    proc = run_main(["--test", "-c", str(DEMO_CONFIG), "-w", str(weights), "-o", *data_overrides(data),
                     f"output_dir={tmp_path / 'out'}"], timeout=240)
    line = error_line(proc)
    assert "no clip was scored: all 6 clips were skipped" in line and "bad0.avi" in line


def test_every_video_missing_stops_before_training(tmp_path):
    for name in ("train.list", "val.list"):
        (tmp_path / name).write_text("gone/a.avi 0\ngone/b.avi 1\n")
    proc = run_main(["-c", str(DEMO_CONFIG), "--validate", "-o", *data_overrides(tmp_path),
                     f"output_dir={tmp_path / 'out'}", *ONE_EPOCH], timeout=240)
    assert "none of the 2 videos listed in" in error_line(proc) and "epoch:" not in proc.stdout


# A loader whose dataset, sampler or worker fails in a way no dataset check can catch. Run in a child process:
# a hang fails the test by timeout.
_FAILING_LOADER = textwrap.dedent("""
    import os, signal, sys, numpy as np, paddle
    from paddlevideo.loader.builder import build_dataloader
    from paddlevideo.loader.failures import LoaderError
    workers, where = int(sys.argv[1]), sys.argv[2]

    class Data(paddle.io.Dataset):
        def __len__(self):
            return 12
        def __getitem__(self, i):
            if i == 5 and where == "item":
                raise RuntimeError("item 5 exploded")
            if i == 5 and where == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            return np.zeros((2,), np.float32), np.array([i])

    class Sampler(paddle.io.BatchSampler):
        def __iter__(self):
            yield [0, 1]
            raise ValueError("sampler exploded")

    loader = build_dataloader(Data(), batch_size=2, num_workers=workers)
    if where == "sampler":
        loader.loader.batch_sampler = Sampler(Data(), batch_size=2)
    try:
        for batch in loader:
            pass
    except LoaderError as err:
        print("LoaderError:", err)
        sys.exit(3)
    print("no error")
""")


@pytest.mark.parametrize("workers, where, words", [
    (0, "item", "RuntimeError: item 5 exploded"), (2, "item", "RuntimeError: item 5 exploded"),
    (0, "sampler", "sampler exploded"), (2, "sampler", "sampler exploded"),
    (2, "kill", "killed"),  # a worker process dies (out of memory, segfault)
])
def test_any_loader_failure_reaches_the_main_thread(workers, where, words):
    proc = subprocess.run([sys.executable, "-c", _FAILING_LOADER, str(workers), where], cwd=REPO, text=True,
                          capture_output=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 3, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert words in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
def test_paddle_alone_hangs_on_a_failing_dataset():
    """The root cause, reproduced: Paddle's own loader thread dies on the exception and the main thread waits
    forever. If this ever stops hanging, ``loader/failures.py`` can be simplified. The clock starts once Paddle
    is imported (a slow import must not pass for a hang): 8 tiny samples take milliseconds, 15 s is a hang."""
    script = textwrap.dedent("""
        import numpy as np, paddle
        class Data(paddle.io.Dataset):
            def __len__(self):
                return 8
            def __getitem__(self, i):
                if i == 3:
                    raise RuntimeError("boom")
                return np.zeros((2,), np.float32)
        print("imported", flush=True)
        for batch in paddle.io.DataLoader(Data(), batch_size=2, num_workers=0):
            pass
        print("finished", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    guard = threading.Timer(300, proc.kill)  # an import that never ends fails the readline below, not the session
    guard.start()
    try:
        assert proc.stdout.readline().strip() == "imported"
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
    finally:
        guard.cancel()
        proc.kill()
        proc.wait()


def test_ctrl_c_with_loader_workers_ends_cleanly(mixed, tmp_path):
    """SIGINT to the whole process group (what Ctrl-C does) mid-epoch: exit 130, one line, no worker
    tracebacks, the lock released, no temporary file left."""
    args = ["-c", str(DEMO_CONFIG), "-o", *data_overrides(mixed), f"output_dir={tmp_path}", "DATASET.num_workers=2",
            "epochs=50", "DATASET.batch_size=2", "GRADIENT_ACCUMULATION.global_batch_size=2", "log_interval=1"]
    proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in proc.stdout:
            if "epoch:[  2/50 ]" in line:
                break
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err, err[-3000:]
    assert not (tmp_path / "run.lock").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def _demo_weights(path):
    import paddle

    from paddlevideo.modeling.builder import build_model
    from paddlevideo.config import get_config

    paddle.seed(0)
    paddle.save(build_model(get_config(str(DEMO_CONFIG), show=False).MODEL).state_dict(), str(path))


def _launch(args, log_dir):
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(log_dir),
           str(REPO / "main.py"), "-c", str(DEMO_CONFIG), *args]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _rank_pid(rank, marker):
    """The pid of the training process of ``rank`` whose command line contains ``marker``."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if f"PADDLE_TRAINER_ID={rank}".encode() in env and marker.encode() in cmdline and b"launch" not in cmdline:
            return int(pid)
    return None


def _finish(proc, timeout):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the 2-process job hung: no exit within {timeout} s\n{out[-4000:]}")
    return out


@pytest.mark.slow
def test_two_processes_end_together_on_a_loader_error(tmp_path):
    data = broken_only(tmp_path)
    proc = _launch(["-o", *data_overrides(data), f"output_dir={tmp_path / 'out'}", "epochs=1",
                    "DATASET.batch_size=2", "GRADIENT_ACCUMULATION.global_batch_size=4"], tmp_path / "logs")
    out = _finish(proc, timeout=300)
    assert proc.returncode != 0
    assert "main.py: error: train: 6 videos in a row failed to load" in out, out[-4000:]


@pytest.mark.slow
def test_two_processes_end_promptly_when_one_rank_dies(tmp_path):
    """SIGKILL one rank mid-epoch: its peer, blocked in the gradient all-reduce, must not wait forever."""
    from engine_helpers import make_data

    make_data(tmp_path / "data", num_train=16, num_val=4)
    out_dir = tmp_path / "out"
    proc = _launch(["-o", *data_overrides(tmp_path / "data"), f"output_dir={out_dir}", "epochs=200",
                    "DATASET.batch_size=2", "GRADIENT_ACCUMULATION.global_batch_size=4", "log_interval=1"],
                   tmp_path / "logs")
    try:
        for line in proc.stdout:
            if "epoch:[  2/200]" in line:
                break
        victim = _rank_pid(1, str(out_dir))
        assert victim, "rank 1 not found"
        os.kill(victim, signal.SIGKILL)
        killed = time.time()
        _finish(proc, timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0 and time.time() - killed < 60
    assert _rank_pid(0, str(out_dir)) is None  # no process of the job is left behind
