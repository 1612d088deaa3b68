"""Command-line reliability (issue 12): every entry point ends bad input with one line ``<tool>: error: ...``
and exit 1 (2 for a bad flag), shows a traceback only with ``--debug`` / ``PADDLEVIDEO_DEBUG=1``, ends an
interrupt with ``<tool>: interrupted`` and 130 / 143 at any moment (inside a custom layer's backward too)
leaving every checkpoint loadable, and refuses a checkpoint conversion whose config would compute other
logits than the source model. Each tool runs in a subprocess, as a user runs it.

Faults a root user cannot create with permissions (a read-only folder) are injected by a ``sitecustomize``
shim that makes the OS calls on one path fail with the errno a read-only mount gives; a full disk is a real
``RLIMIT_FSIZE``.
"""

import csv
import os
import random
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from paddlevideo.loader.demo_data import make_demo_dataset, write_avi
from paddlevideo.common import save_load

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"
# Paddle's kernels instead of the fused CPU ones: nothing to compile in a subprocess (the test of an interrupt
# inside a custom layer's backward turns them on: the backbone's PyLayers belong to that path).
BASE_ENV = {**os.environ, "PADDLEVIDEO_FAST_CPU_OPS": "0", "PYTHONPATH": str(REPO)}
BASE_ENV.pop("PADDLEVIDEO_DEBUG", None)
TIMEOUT = 240


def run_tool(tool, *args, env=None, timeout=TIMEOUT, preexec_fn=None):
    """Run ``tool`` (``main.py`` or ``tools/...``) like a user; a hang fails the test by timeout."""
    return subprocess.run([sys.executable, str(REPO / tool), *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**BASE_ENV, **(env or {})}, preexec_fn=preexec_fn)


def prog_of(tool):
    return Path(tool).name


def assert_one_line_error(proc, tool, *words, code=1):
    """Exit ``code``, exactly one stderr line ``<tool>: error: ...`` (the last one), naming ``words`` (in any
    case), and no traceback."""
    prog = prog_of(tool)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f"{prog}: error:")]
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-3000:]
    for word in words:
        assert word.lower() in errors[0].lower(), (word, errors[0])
    return errors[0]


# ---------------------------------------------------------------- fault injection

FAULT_SHIM = r'''
"""Test shim: make every write or folder creation at or below PV_FAULT_PATH fail with PV_FAULT_ERRNO."""
import builtins, errno, io, os

_ROOT = os.environ.get("PV_FAULT_PATH")
if _ROOT:
    _ROOT = os.path.abspath(_ROOT)
    _ERRNO = getattr(errno, os.environ.get("PV_FAULT_ERRNO", "EROFS"))

    def _hit(path):
        try:
            path = os.path.abspath(os.fsdecode(path))
        except TypeError:
            return False
        return path == _ROOT or path.startswith(_ROOT + os.sep)

    def _fail(path):
        raise OSError(_ERRNO, os.strerror(_ERRNO), os.fsdecode(path))

    _open = builtins.open

    def _guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+") and _hit(file):
            _fail(file)
        return _open(file, mode, *args, **kwargs)

    builtins.open = io.open = _guarded_open
    _os_open = os.open

    def _guarded_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _hit(path):
            _fail(path)
        return _os_open(path, flags, *args, **kwargs)

    os.open = _guarded_os_open
    _mkdir = os.mkdir

    def _guarded_mkdir(path, *args, **kwargs):
        if _hit(path):
            _fail(path)
        return _mkdir(path, *args, **kwargs)

    os.mkdir = _guarded_mkdir
'''


@pytest.fixture
def read_only(tmp_path):
    """``read_only(path)`` -> env making ``path`` behave as a read-only mount (EROFS) in a subprocess."""
    shim = tmp_path / "fault_shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(FAULT_SHIM)

    def env(path, errno_name="EROFS"):
        return {"PYTHONPATH": f"{shim}{os.pathsep}{REPO}", "PV_FAULT_PATH": str(path), "PV_FAULT_ERRNO": errno_name}

    return env


def file_size_limit(size):
    """preexec_fn: a disk that fills after ``size`` bytes per file (writes fail with EFBIG)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


# ---------------------------------------------------------------- inputs the cases use

def write_rows(path, rows, header=("label", "youtube_id", "time_start", "time_end", "split"), newline="\n",
               encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, lineterminator=newline)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def k400(tmp_path):
    """Good Kinetics inputs: train.csv, validate.csv, a clip folder, and a function to write a bad CSV."""
    folder = tmp_path / "k400"
    videos = folder / "videos"
    videos.mkdir(parents=True)
    write_avi(videos / "aaa_000010_000020.avi", np.full((3, 16, 16, 3), 100, np.uint8), fps=25)
    rows = [["abseiling", "aaa", 10, 20, "train"], ["air drumming", "bbb", 0, 10, "train"]]
    return {"train": write_rows(folder / "train.csv", rows),
            "val": write_rows(folder / "validate.csv", [["abseiling", "ccc", 5, 15, "val"]]),
            "videos": videos, "dir": folder, "rows": rows}


def k400_args(k400, out, train=None, val=None):
    return ["--train_csv", train or k400["train"], "--val_csv", val or k400["val"], "--video_dir", k400["videos"],
            "--output", out]


@pytest.fixture
def ucf(tmp_path):
    notes = tmp_path / "ucfTrainTestlist"
    notes.mkdir()
    (notes / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (notes / "trainlist01.txt").write_text("Archery/v_Archery_g01_c01.avi 2\n")
    (notes / "testlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n")
    return notes


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """The tiny config, random weights for it and a short clip (for the model tools)."""
    import paddle

    from conftest import K400_CONFIG, TINY_OVERRIDES
    from paddlevideo.modeling import build_model
    from paddlevideo.config import get_config
    from paddlevideo.config import save_config

    folder = tmp_path_factory.mktemp("tiny")
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    save_config(cfg, folder / "tiny.yaml")
    paddle.save(build_model(cfg.MODEL).state_dict(), str(folder / "tiny.pdparams"))
    write_avi(folder / "clip.avi", np.random.default_rng(0).integers(0, 255, (12, 40, 40, 3), dtype=np.uint8))
    (folder / "not_a_video.avi").write_bytes(b"\x00" * 300)
    return {"config": folder / "tiny.yaml", "weights": folder / "tiny.pdparams", "clip": folder / "clip.avi",
            "folder": folder}


# ---------------------------------------------------------------- data tools

K400_TOOL = "tools/data/k400/build_lists.py"
UCF_TOOL = "tools/data/ucf101/build_lists.py"


@pytest.mark.parametrize("name, rows, header, words", [
    ("missing column", [["abseiling", "aaa", 10]], ("label", "youtube_id", "time_start"),
     ["train.csv:1", "missing column 'time_end'"]),
    ("bad time stamp", [["abseiling", "aaa", "ten", 20, "train"]], None, ["train.csv:2", "time_start 'ten'"]),
    ("end before start", [["abseiling", "aaa", 20, 10, "train"]], None, ["train.csv:2", "time_end 10"]),
    ("negative time", [["abseiling", "aaa", -5, 10, "train"]], None, ["train.csv:2", "time_start '-5'"]),
    ("empty label", [["abseiling", "aaa", 10, 20, "train"], ["", "bbb", 0, 10, "train"]], None,
     ["train.csv:3", "empty label"]),
    ("empty id", [["abseiling", "", 10, 20, "train"]], None, ["train.csv:2", "empty youtube_id"]),
    ("only blank rows", [[], ["", "", "", "", ""]], None, ["train.csv", "no annotation rows"]),
    ("empty file", [], (), ["train.csv:1", "missing column 'label'", "empty file"]),
])
def test_k400_malformed_train_csv_is_one_line(k400, tmp_path, name, rows, header, words):
    header = ("label", "youtube_id", "time_start", "time_end", "split") if header is None else header
    bad = write_rows(tmp_path / "train.csv", rows, header=header)
    out = tmp_path / "out"
    proc = run_tool(K400_TOOL, *k400_args(k400, out, train=bad))
    assert_one_line_error(proc, K400_TOOL, *words)
    assert not out.exists()  # checked before anything is written


def test_k400_validation_label_outside_the_training_classes(k400, tmp_path):
    val = write_rows(tmp_path / "validate.csv", [["abseiling", "x", 0, 10, "val"], ["abseilng", "y", 0, 10, "val"]])
    proc = run_tool(K400_TOOL, *k400_args(k400, tmp_path / "out", val=val))
    assert_one_line_error(proc, K400_TOOL, "validate.csv:3", "label 'abseilng'", "did you mean 'abseiling'")


def test_k400_label_not_in_label_list(k400, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("0 abseiling\n1 air_drumming\n")
    val = write_rows(tmp_path / "validate.csv", [["zumba", "z", 0, 10, "val"]])
    proc = run_tool(K400_TOOL, *k400_args(k400, tmp_path / "out", val=val), "--label_list", labels)
    assert_one_line_error(proc, K400_TOOL, "validate.csv:2", "'zumba'", "--label_list")


def test_k400_non_utf8_and_nul_bytes(k400, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("label,youtube_id,time_start,time_end\ncaf\xe9,aaa,1,2\n".encode("latin-1"))
    assert_one_line_error(run_tool(K400_TOOL, *k400_args(k400, tmp_path / "o", train=latin)), K400_TOOL,
                          "latin.csv", "not UTF-8")
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"label,youtube_id,time_start,time_end\nab\x00c,aaa,1,2\n")
    assert_one_line_error(run_tool(K400_TOOL, *k400_args(k400, tmp_path / "o", train=nul)), K400_TOOL, "nul.csv")


def test_k400_bom_crlf_and_blank_rows_are_read(k400, tmp_path):
    rows = [["abseiling", "aaa", 10, 20, "train"], [], ["", "", "", "", ""], ["air drumming", "bbb", 0, 10, "train"]]
    train = write_rows(tmp_path / "train.csv", rows, newline="\r\n", encoding="utf-8-sig")
    out = tmp_path / "out"
    proc = run_tool(K400_TOOL, *k400_args(k400, out, train=train))
    assert proc.returncode == 0, proc.stderr
    assert (out / "Kinetics-400_label_list.txt").read_text() == "0 abseiling\n1 air_drumming\n"
    assert (out / "train.list").read_text() == "aaa_000010_000020.avi 0\n"  # bbb is missing, reported
    assert "missing clips: 2" in proc.stdout


def test_k400_missing_inputs(k400, tmp_path):
    proc = run_tool(K400_TOOL, *k400_args(k400, tmp_path / "o", train=tmp_path / "nope.csv"))
    assert_one_line_error(proc, K400_TOOL, "nope.csv", "not found")
    args = k400_args(k400, tmp_path / "o")
    args[args.index("--video_dir") + 1] = tmp_path / "no_videos"
    assert_one_line_error(run_tool(K400_TOOL, *args), K400_TOOL, "no_videos", "not found")
    proc = run_tool(K400_TOOL, "--train_csv", k400["train"])  # --val_csv and --video_dir missing
    assert_one_line_error(proc, K400_TOOL, "required", code=2)


def test_k400_unwritable_output(k400, tmp_path, read_only):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    assert_one_line_error(run_tool(K400_TOOL, *k400_args(k400, a_file)), K400_TOOL, str(a_file), "is a file")
    under_file = a_file / "lists"
    assert_one_line_error(run_tool(K400_TOOL, *k400_args(k400, under_file)), K400_TOOL, str(under_file),
                          "not a folder")
    locked = tmp_path / "ro"
    locked.mkdir()
    proc = run_tool(K400_TOOL, *k400_args(k400, locked), env=read_only(locked))
    assert_one_line_error(proc, K400_TOOL, str(locked), "read-only")
    assert list(locked.iterdir()) == []


def test_k400_disk_full_names_the_file_and_leaves_no_partial_list(k400, tmp_path):
    rows = [["abseiling", "aaa", 10, 20, "train"]] * 400  # a train.list of ~10 kB
    train = write_rows(tmp_path / "train.csv", rows)
    out = tmp_path / "out"
    out.mkdir()
    proc = run_tool(K400_TOOL, *k400_args(k400, out, train=train), preexec_fn=file_size_limit(4096))
    assert_one_line_error(proc, K400_TOOL, str(out / "train.list"), "file too large")
    assert not (out / "train.list").exists() and not list(out.glob("*.tmp"))


@pytest.mark.parametrize("files, words", [
    ({"classInd.txt": None}, ["classInd.txt", "not found"]),
    ({"classInd.txt": "1 ApplyEyeMakeup\nArchery 2\n"}, ["classInd.txt:2", "'Archery 2'"]),
    ({"classInd.txt": "1 ApplyEyeMakeup\n3 Archery\n"}, ["classInd.txt", "without gaps"]),
    ({"classInd.txt": "1 A\n2 A\n"}, ["classInd.txt:2", "listed twice"]),
    ({"classInd.txt": ""}, ["classInd.txt", "no classes"]),
    ({"trainlist01.txt": "Archery/v_Archery_g01_c01.avi two\n"}, ["trainlist01.txt:1", "label 'two'"]),
    ({"trainlist01.txt": "Archery/v_Archery_g01_c01.avi 1\n"}, ["trainlist01.txt:1", "disagrees"]),
    ({"trainlist01.txt": "Boxing/v_Boxing_g01_c01.avi 1\n"}, ["trainlist01.txt:1", "'Boxing'"]),
    ({"trainlist01.txt": "v_Archery_g01_c01.avi 2\n"}, ["trainlist01.txt:1", "ClassName/v_name.avi"]),
    ({"testlist01.txt": None}, ["testlist01.txt", "not found"]),
    ({"testlist01.txt": "\n\n"}, ["testlist01.txt", "no videos"]),
])
def test_ucf101_bad_annotations_are_one_line(ucf, tmp_path, files, words):
    for name, text in files.items():
        if text is None:
            (ucf / name).unlink()
        else:
            (ucf / name).write_text(text)
    out = tmp_path / "out"
    assert_one_line_error(run_tool(UCF_TOOL, "--annotations", ucf, "--output", out), UCF_TOOL, *words)
    assert not out.exists()


def test_ucf101_bom_and_crlf_are_read_and_output_checked(ucf, tmp_path, read_only):
    (ucf / "classInd.txt").write_bytes("\ufeff1 ApplyEyeMakeup\r\n2 Archery\r\n".encode("utf-8"))
    out = tmp_path / "out"
    proc = run_tool(UCF_TOOL, "--annotations", ucf, "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "ucf101_label_list.txt").read_text() == "0 ApplyEyeMakeup\n1 Archery\n"
    assert (out / "train_split1.list").read_text() == "Archery/v_Archery_g01_c01.avi 1\n"
    proc = run_tool(UCF_TOOL, "--annotations", ucf, "--output", out, env=read_only(out))
    assert_one_line_error(proc, UCF_TOOL, str(out), "read-only")


def test_make_demo_data_output_checks(tmp_path, read_only):
    tool = "tools/make_demo_data.py"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert_one_line_error(run_tool(tool, "--output", a_file, "--num_train", 4), tool, str(a_file), "is a file")
    assert_one_line_error(run_tool(tool, "--output", a_file / "demo", "--num_train", 4), tool, "not a folder")
    locked = tmp_path / "ro"
    proc = run_tool(tool, "--output", locked, "--num_train", 4, "--num_val", 4, env=read_only(locked, "EACCES"))
    assert_one_line_error(proc, tool, str(locked), "permission denied")
    assert_one_line_error(run_tool(tool, "--num_train", "-3"), tool, "--num_train", code=2)


# ---------------------------------------------------------------- model tools

def test_main_output_folder_that_is_a_file_or_read_only(tmp_path, demo_data, read_only):
    tool = "main.py"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    args = train_args(demo_data, a_file, epochs=1)
    assert_one_line_error(run_tool(tool, *args), tool, str(a_file), "is a file")
    locked = tmp_path / "ro"
    locked.mkdir()
    proc = run_tool(tool, *train_args(demo_data, locked, epochs=1), env=read_only(locked))
    assert_one_line_error(proc, tool, str(locked), "read-only")
    assert list(locked.iterdir()) == []


def test_main_bad_inputs(tmp_path, tiny_files):
    tool = "main.py"
    assert_one_line_error(run_tool(tool, "-c", tmp_path / "none.yaml"), tool, "none.yaml")
    assert_one_line_error(run_tool(tool, "-c", tiny_files["config"], "-o", "noequals"), tool, "noequals")
    assert_one_line_error(run_tool(tool, "-c", tiny_files["config"], "-o", "MODEL.backbone.name=NoSuchNet",
                                   f"output_dir={tmp_path / 'o'}"), tool, "'NoSuchNet'", "VisionTransformer")
    proc = run_tool(tool, "--test", "-c", tiny_files["config"], "-w", tmp_path / "none.pdparams",
                    "-o", f"output_dir={tmp_path / 'o'}")
    assert_one_line_error(proc, tool, "none.pdparams")
    assert_one_line_error(run_tool(tool, "-c", tiny_files["config"], "--frobnicate"), tool, "--frobnicate", code=2)


def test_predict_and_export_bad_inputs(tmp_path, tiny_files):
    predict, export = "tools/predict.py", "tools/export_model.py"
    proc = run_tool(predict, "-i", tmp_path / "none.avi", "-c", tiny_files["config"], "--model_file",
                    tmp_path / "m.pdmodel")
    assert_one_line_error(proc, predict, "none.avi")
    proc = run_tool(predict, "-i", tiny_files["clip"], "-c", tiny_files["config"], "--model_file",
                    tmp_path / "m.pdmodel")
    assert_one_line_error(proc, predict, "m.pdmodel")
    assert_one_line_error(run_tool(predict, "-i", "x.avi", "-c", "y.yaml"), predict, "--model_file", code=2)
    proc = run_tool(export, "-c", tiny_files["config"], "-p", tmp_path / "none.pdparams", "-o", tmp_path / "inf")
    assert_one_line_error(proc, export, "none.pdparams")
    assert_one_line_error(run_tool(export, "-c", tiny_files["config"]), export, "-p", code=2)


def test_export_on_a_full_disk_is_one_line_and_leaves_no_model(tmp_path, tiny_files):
    """Paddle's writer truncates .pdiparams silently at a file-size limit; the export must notice, say so, and
    leave nothing in the folder that looks like a model (an earlier export there stays as it was)."""
    export = "tools/export_model.py"
    out = tmp_path / "inf"
    proc = run_tool(export, "-c", tiny_files["config"], "-p", tiny_files["weights"], "-o", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    params = [name for name in before if name.endswith(".pdiparams")]
    assert params and any(name.endswith(".pdmodel") for name in before)
    limit = len(before[params[0]]) // 2
    proc = run_tool(export, "-c", tiny_files["config"], "-p", tiny_files["weights"], "-o", out, "--onnx",
                    preexec_fn=file_size_limit(limit))
    assert_one_line_error(proc, export, str(out), "cannot write the exported model", "nothing was written")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no staging folder, no new file
    fresh = tmp_path / "fresh"
    proc = run_tool(export, "-c", tiny_files["config"], "-p", tiny_files["weights"], "-o", fresh,
                    preexec_fn=file_size_limit(limit))
    assert_one_line_error(proc, export, "written incomplete")
    assert list(fresh.iterdir()) == []


def test_extract_features_bad_inputs(tmp_path, tiny_files):
    tool = "tools/extract_features.py"
    base = ["-c", tiny_files["config"], "-w", tiny_files["weights"]]
    proc = run_tool(tool, *base, "--input_file", tmp_path / "none", "-o", tmp_path / "f")
    assert_one_line_error(proc, tool, "none", "neither a video file nor a folder")
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    proc = run_tool(tool, *base, "--input_file", tiny_files["clip"], "-o", a_file)
    assert_one_line_error(proc, tool, str(a_file), "is a file")
    proc = run_tool(tool, "-c", tiny_files["config"], "-w", tmp_path / "none.pdparams", "--input_file",
                    tiny_files["clip"], "-o", tmp_path / "f")
    assert_one_line_error(proc, tool, "none.pdparams")
    proc = run_tool(tool, *base, "--input_file", tiny_files["folder"], "-o", tmp_path / "f")
    assert_one_line_error(proc, tool, "1 of 2 video(s) could not be read", "not_a_video.avi")
    assert (tmp_path / "f" / "clip.npy").is_file()  # the readable one was still written
    assert_one_line_error(run_tool(tool, *base, "--input_file", "x", "-o", "y", "--num_clips", "0"), tool,
                          "--num_clips", code=2)


def test_bench_tools_bad_inputs(tmp_path):
    assert_one_line_error(run_tool("tools/bench_loader.py", "-c", tmp_path / "none.yaml"), "tools/bench_loader.py",
                          "none.yaml")
    assert_one_line_error(run_tool("tools/bench_loader.py", "--backends", "vlc"), "tools/bench_loader.py", "vlc",
                          code=2)
    assert_one_line_error(run_tool("tools/benchmark.py", "-c", tmp_path / "none.yaml"), "tools/benchmark.py",
                          "none.yaml", code=2)
    proc = run_tool("tools/benchmark.py", "--contenders", "nope", "-c", DEMO_CONFIG)
    assert_one_line_error(proc, "tools/benchmark.py", "unknown contender(s) nope")


def test_demo_stops_at_a_failing_step_with_one_line_of_its_own(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    proc = run_tool("tools/demo.py", "--quick", "--data_dir", a_file / "demo", "--output_dir", tmp_path / "o",
                    "--inference_dir", tmp_path / "i")
    assert_one_line_error(proc, "tools/demo.py", "the step above failed (exit code 1)")
    assert "make_demo_data.py: error: --output" in proc.stderr  # the step's own line comes first


def test_demo_passes_an_interrupt_on_to_its_running_step(tmp_path):
    """SIGTERM to demo.py alone (not its process group): the training step gets it too, stops cleanly and says
    so, then the demo does."""
    proc = subprocess.Popen([sys.executable, str(REPO / "tools/demo.py"), "--quick", "--data_dir", str(tmp_path / "d"),
                             "--output_dir", str(tmp_path / "o"), "--inference_dir", str(tmp_path / "i")], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=BASE_ENV)
    lines = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    deadline = time.time() + 180
    while not any("train step:" in line for line in list(lines)):
        assert proc.poll() is None and time.time() < deadline, "".join(lines[-20:])
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("demo.py did not stop") from None
    assert proc.returncode == 143, err[-2000:]
    assert [line for line in err.splitlines() if "interrupted" in line] == ["main.py: interrupted",
                                                                            "demo.py: interrupted"], err[-2000:]
    assert "Traceback" not in err
    assert_checkpoints_loadable(tmp_path / "o")


# One bad input per tool: without --debug one line (checked above), with --debug / PADDLEVIDEO_DEBUG=1 also
# the traceback, and the line still last.
DEBUG_CASES = {
    "main.py": lambda t, f: ["-c", t / "none.yaml"],
    "tools/predict.py": lambda t, f: ["-i", t / "none.avi", "-c", f["config"], "--model_file", t / "m.pdmodel"],
    "tools/export_model.py": lambda t, f: ["-c", f["config"], "-p", t / "none.pdparams", "-o", t / "inf"],
    "tools/convert_checkpoint.py": lambda t, f: ["--from", "fb", t / "none.pyth", "-o", t / "o.pdparams"],
    "tools/extract_features.py": lambda t, f: ["-c", f["config"], "-w", f["weights"], "--input_file", t / "none",
                                               "-o", t / "f"],
    "tools/make_demo_data.py": lambda t, f: ["--output", f["clip"]],
    "tools/make_demo_long_video.py": lambda t, f: ["--output", f"{f['clip']}/long.avi"],  # a folder that is a file
    "tools/demo.py": lambda t, f: ["--quick", "--data_dir", f["clip"]],
    "tools/bench_loader.py": lambda t, f: ["-c", t / "none.yaml"],
    "tools/benchmark.py": lambda t, f: ["--contenders", "nope", "-c", DEMO_CONFIG],
    K400_TOOL: lambda t, f: ["--train_csv", t / "none.csv", "--val_csv", t / "v.csv", "--video_dir", t],
    UCF_TOOL: lambda t, f: ["--annotations", t],
}


@pytest.mark.parametrize("tool", sorted(DEBUG_CASES))
@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(tmp_path, tiny_files, tool, how):
    args = DEBUG_CASES[tool](tmp_path, tiny_files)
    proc = run_tool(tool, *args, "--debug") if how == "flag" else run_tool(tool, *args, env={"PADDLEVIDEO_DEBUG": "1"})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"{prog_of(tool)}: error: ")


ENTRY_POINTS = sorted(str(path.relative_to(REPO)) for path in [REPO / "main.py", *(REPO / "tools").rglob("*.py")]
                      if 'if __name__ == "__main__":' in path.read_text())


@pytest.mark.parametrize("tool", ENTRY_POINTS)
def test_every_entry_point_runs_through_the_wrapper(tool):
    """A new tool gets the same contract: it runs through cli.run and has --debug."""
    source = (REPO / tool).read_text()
    assert "from paddlevideo.cli import" in source and re.search(r"sys\.exit\(run\(", source), tool
    proc = run_tool(tool, "--help")
    assert proc.returncode == 0 and "--debug" in proc.stdout, proc.stderr[-2000:]


# ---------------------------------------------------------------- the wrapper itself

_WRAPPED = r"""
import sys
from paddlevideo.cli import run

def main(argv):
    if "--log" in argv:
        from paddlevideo.common.logger import setup_logger
        setup_logger(argv[argv.index("--log") + 1])
    kind = argv[0]
    if kind == "bug":
        return {}["no such key"]
    if kind == "exit-message":
        sys.exit("the input is wrong; fix it")
    if kind == "registry":
        from paddlevideo.common.registry import Registry
        Registry("widget").get("Dial")
    if kind == "enospc":
        import errno
        raise OSError(errno.ENOSPC, "No space left on device")
    if kind == "eisdir":
        open(argv[1], "w")
    if kind == "memory":
        raise MemoryError("could not allocate 12 GB")
    if kind == "print":
        for i in range(100000):
            print("line", i)
    return 0

sys.exit(run("wrapped.py", main, sys.argv[1:]))
"""


def run_wrapped(tmp_path, *args, env=None):
    script = tmp_path / "wrapped.py"
    script.write_text(_WRAPPED)
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**BASE_ENV, **(env or {})})


def test_a_bug_is_one_line_with_its_traceback_saved(tmp_path):
    proc = run_wrapped(tmp_path, "bug", env={"TMPDIR": str(tmp_path)})
    line = assert_one_line_error(proc, "wrapped.py", "unexpected KeyError", "a bug", "rerun with --debug")
    saved = Path(re.search(r"its traceback is in (\S+);", line).group(1))
    assert saved.parent == tmp_path and "Traceback (most recent call last)" in saved.read_text()
    assert "KeyError: 'no such key'" in saved.read_text()
    log = tmp_path / "run.log"  # a tool with a log file keeps the traceback there
    line = assert_one_line_error(run_wrapped(tmp_path, "bug", "--log", log), "wrapped.py", str(log))
    assert "Traceback (most recent call last)" in log.read_text() and "unexpected KeyError" in log.read_text()
    proc = run_wrapped(tmp_path, "bug", "--debug")
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("wrapped.py: error: unexpected KeyError")


@pytest.mark.parametrize("kind, words", [
    ("exit-message", ["wrapped.py: error: the input is wrong; fix it"]),
    ("registry", ["unknown widget name 'Dial'; known widgets: (none)"]),  # a KeyError, printed without quotes
    ("enospc", ["no space left on the device", "free some space"]),
    ("eisdir", ["is a folder, not a file"]),
    ("memory", ["out of memory (could not allocate 12 GB)", "smaller batch_size"]),
])
def test_error_kinds_are_one_line(tmp_path, kind, words):
    proc = run_wrapped(tmp_path, kind, tmp_path)
    line = assert_one_line_error(proc, "wrapped.py", *words)
    assert "unexpected" not in line and "'unknown" not in line


def test_closed_stdout_ends_quietly(tmp_path):
    script = tmp_path / "wrapped.py"
    script.write_text(_WRAPPED)
    proc = subprocess.run(f"{sys.executable} {script} print | head -n 2", shell=True, cwd=REPO, capture_output=True,
                          text=True, timeout=60, env=BASE_ENV)
    assert proc.stdout.splitlines() == ["line 0", "line 1"]
    assert proc.stderr == "", proc.stderr


# ---------------------------------------------------------------- interrupts of a training run

@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    make_demo_dataset(str(folder), num_train=8, num_val=4, seed=0, num_frames=8, size=32)
    return folder


def train_args(data, out, epochs=500):
    data = str(data)
    return ["-c", DEMO_CONFIG, "-o", f"DATASET.train.data_prefix={data}", f"DATASET.train.file_path={data}/train.list",
            f"DATASET.valid.data_prefix={data}", f"DATASET.valid.file_path={data}/val.list", f"output_dir={out}",
            f"epochs={epochs}", "DATASET.batch_size=2", "GRADIENT_ACCUMULATION.global_batch_size=2", "log_interval=1",
            "save_interval=1"]


class Training:
    """``python main.py`` training the demo model in the background; stdout is collected as it comes."""

    def __init__(self, data, out, command=None, env=None):
        command = command or [sys.executable, str(REPO / "main.py")]
        self.proc = subprocess.Popen(command + [str(a) for a in train_args(data, out)], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**BASE_ENV, **(env or {})})
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text, timeout=120):
        deadline = time.time() + timeout
        while not any(text in line for line in list(self.lines)):
            assert self.proc.poll() is None, "training ended early: " + "".join(self.lines[-20:])
            assert time.time() < deadline, f"'{text}' not seen within {timeout} s"
            time.sleep(0.02)

    def finish(self, timeout=90):
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("main.py did not stop after the interrupt (hang)") from None
        self.reader.join(5)
        return self.proc.returncode, err


def assert_interrupted(code, stderr, signum):
    assert code == 128 + signum, (code, stderr[-3000:])
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1] == "main.py: interrupted", stderr[-3000:]
    assert "Traceback" not in stderr and "Error" not in stderr, stderr[-3000:]
    assert "SIGTERM" not in stderr and "Aborted at" not in stderr  # Paddle's C++ handler did not take over


def assert_checkpoints_loadable(out, allow_tmp=False):
    if not Path(out).exists():  # stopped before the run created its output folder
        return []
    files = sorted(p for p in Path(out).iterdir() if p.suffix in (".pdparams", ".pdopt"))
    for path in files:
        state = save_load.load(str(path))
        assert isinstance(state, dict) and state, path
    if not allow_tmp:
        assert not list(Path(out).glob("*.tmp")), "an interrupted save left a temporary file"
    return files


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("moment", ["start-up", "training"])
def test_interrupt_at_a_moment(demo_data, tmp_path, signum, moment):
    out = tmp_path / "out"
    run = Training(demo_data, out)
    if moment == "start-up":
        time.sleep(1.0)  # importing paddle, reading the config, building the model
    else:
        run.wait_for("saved")
        time.sleep(random.Random(signum).uniform(0.0, 0.3))
    run.proc.send_signal(signum)
    code, err = run.finish()
    assert_interrupted(code, err, signum)
    files = assert_checkpoints_loadable(out)
    if moment == "training":
        assert files  # at least the epoch whose save was awaited


# Counts the Linear layers' backward (a PyLayer of the backbone) and sends the signal from inside the N-th one:
# Paddle's C++ autograd engine then carries the KeyboardInterrupt out wrapped in another exception type.
_IN_BACKWARD = r"""
import os, runpy, signal, sys
import paddle

_matmul, _calls = paddle.matmul, [0]

def matmul(*args, **kwargs):
    frame = sys._getframe(1)
    if frame.f_code.co_name == "backward" and "paddlevideo" in frame.f_code.co_filename:
        _calls[0] += 1
        if _calls[0] == int(os.environ["PV_SIGNAL_AT"]):
            open(os.environ["PV_MARK"], "w").write(frame.f_code.co_qualname if hasattr(frame.f_code, "co_qualname")
                                                   else "backward")
            os.kill(os.getpid(), int(os.environ["PV_SIGNAL"]))
    return _matmul(*args, **kwargs)

paddle.matmul = matmul
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("signum, debug", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-debug"])
def test_interrupt_inside_a_custom_layer_backward(demo_data, tmp_path, signum, debug):
    shim = tmp_path / "in_backward.py"
    shim.write_text(_IN_BACKWARD)
    mark, out = tmp_path / "sent", tmp_path / "out"
    # the CPU fast path on (the PyLayers are part of it); its kernels compile once per environment
    env = {"PV_SIGNAL": str(int(signum)), "PV_SIGNAL_AT": "400", "PV_MARK": str(mark), "PADDLEVIDEO_FAST_CPU_OPS": "1"}
    if debug:
        env["PADDLEVIDEO_DEBUG"] = "1"
    run = Training(demo_data, out, command=[sys.executable, str(shim), str(REPO / "main.py")], env=env)
    code, err = run.finish(timeout=600)
    assert mark.is_file(), "the signal was not sent from inside a backward: " + err[-2000:]
    assert "_LinearFunction.backward" in mark.read_text()
    if debug:  # where it landed: inside Paddle's backward of the PyLayer, surfacing as another exception type
        assert code == 130 and "GradNodePyLayer" in err and "Traceback" in err, err[-3000:]
        assert err.strip().splitlines()[-1] == "main.py: interrupted"
    else:
        assert_interrupted(code, err, signum)
    assert assert_checkpoints_loadable(out)  # ~7 updates per epoch's backward calls: some epochs were saved


def _send_repeatedly(run, signum, seed, max_signals=40):
    rng = random.Random(seed)
    run.wait_for("saved")
    for _ in range(max_signals):
        time.sleep(rng.uniform(0.01, 0.35))
        if run.proc.poll() is not None:
            break
        run.proc.send_signal(signum)


@pytest.mark.parametrize("seed", [0])
def test_repeated_interrupts_at_varied_times(demo_data, tmp_path, seed):
    out = tmp_path / "out"
    run = Training(demo_data, out)
    _send_repeatedly(run, signal.SIGINT, seed)
    code, err = run.finish()
    assert_interrupted(code, err, signal.SIGINT)
    assert_checkpoints_loadable(out, allow_tmp=True)  # a forced stop (a signal >1 s later) may leave a .tmp


@pytest.mark.slow
@pytest.mark.parametrize("signum, seed", [(signal.SIGINT, s) for s in (1, 2, 3, 4)] +
                         [(signal.SIGTERM, s) for s in (5, 6)])
def test_repeated_interrupts_at_varied_times_more_seeds(demo_data, tmp_path, signum, seed):
    out = tmp_path / "out"
    run = Training(demo_data, out)
    _send_repeatedly(run, signum, seed)
    code, err = run.finish()
    assert_interrupted(code, err, signum)
    assert_checkpoints_loadable(out, allow_tmp=True)


# ---------------------------------------------------------------- converter: settings the fb tensors do not show

CONVERT = "tools/convert_checkpoint.py"


def _fb_checkpoint(tmp_path, dim=128, heads_in_config=2, epsilon_in_config=1e-6):
    """A tiny original-release checkpoint (random tensors in the release's names) and a config for it."""
    from conftest import K400_CONFIG, TINY_OVERRIDES
    from test_convert import _fb_state, _save_pyth

    from paddlevideo.config import get_config
    from paddlevideo.config import save_config

    _save_pyth(_fb_state(np.random.RandomState(0), dim=dim), tmp_path / "tiny.pyth")
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES + [f"MODEL.backbone.embed_dim={dim}",
                                                         f"MODEL.head.in_channels={dim}",
                                                         f"MODEL.backbone.num_heads={heads_in_config}",
                                                         f"MODEL.backbone.epsilon={epsilon_in_config}"], show=False)
    return tmp_path / "tiny.pyth", save_config(cfg, tmp_path / "tiny.yaml")


@pytest.mark.parametrize("setting, config_kwargs, words, override", [
    ("heads", {"heads_in_config": 4}, ["MODEL.backbone.num_heads: config 4 vs the original release's 2",
                                       "--source-num-heads 4"], ["--source-num-heads", "4"]),
    ("epsilon", {"epsilon_in_config": 1e-5}, ["MODEL.backbone.epsilon: config 1e-05 vs the original release's 1e-06",
                                              "--source-epsilon 1e-05"], ["--source-epsilon", "1e-5"]),
])
def test_fb_config_with_other_heads_or_epsilon_is_refused(tmp_path, setting, config_kwargs, words, override):
    src, config = _fb_checkpoint(tmp_path, **config_kwargs)
    out = tmp_path / "out.pdparams"
    proc = run_tool(CONVERT, "--from", "fb", src, "-o", out, "-c", config)
    assert_one_line_error(proc, CONVERT, *words)
    assert not out.exists()
    # Declaring that the source model used the config's value: the source is rebuilt with it and matches.
    proc = run_tool(CONVERT, "--from", "fb", src, "-o", out, "-c", config, *override)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "logits match the source model's" in proc.stdout and "verified against" in proc.stdout
    assert out.is_file()


def test_fb_release_settings_pass_and_compare_logits(tmp_path):
    src, config = _fb_checkpoint(tmp_path)  # 128 wide, 2 heads of 64, eps 1e-6: as the release
    out = tmp_path / "out.pdparams"
    proc = run_tool(CONVERT, "--from", "fb", src, "-o", out, "-c", config)
    assert proc.returncode == 0, proc.stderr[-2000:]
    diff = float(re.search(r"max abs difference (\S+),", proc.stdout).group(1))
    assert diff < 1e-9 and "verified against" in proc.stdout


def test_a_setting_only_the_logits_can_see_is_caught(tmp_path):
    """qk_scale is in no tensor shape and no release convention: the shapes load, only comparing the
    converted model's logits with the source model's notices it."""
    from paddlevideo.config import get_config
    from paddlevideo.config import save_config

    src, config = _fb_checkpoint(tmp_path)
    cfg = get_config(str(config), ["MODEL.backbone.qk_scale=0.05"], show=False)
    proc = run_tool(CONVERT, "--from", "fb", src, "-o", tmp_path / "out.pdparams", "-c",
                    save_config(cfg, tmp_path / "qk.yaml"))
    assert_one_line_error(proc, CONVERT, "logits differ from the source model's", "nothing was written")
    assert not (tmp_path / "out.pdparams").exists()


def test_hf_config_epsilon_mismatch_is_refused(tmp_path):
    from test_convert import _hf_model

    from paddlevideo.config import get_config
    from paddlevideo.config import save_config

    from conftest import K400_CONFIG, TINY_OVERRIDES

    hf = _hf_model()
    hf.config.layer_norm_eps = 1e-5
    hf.save_pretrained(tmp_path / "hf")
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES + ["MODEL.backbone.epsilon=1e-6"], show=False)
    proc = run_tool(CONVERT, "--from", "hf", tmp_path / "hf", "-o", tmp_path / "o.pdparams", "-c",
                    save_config(cfg, tmp_path / "c.yaml"))
    assert_one_line_error(proc, CONVERT, "MODEL.backbone.epsilon: config 1e-06 vs checkpoint 1e-05")
    proc = run_tool(CONVERT, "--from", "hf", tmp_path / "hf", "-o", tmp_path / "o.pdparams")  # derived config
    assert proc.returncode == 0 and "logits match the source model's" in proc.stdout, proc.stderr[-2000:]


def test_converter_bad_sources_and_outputs(tmp_path, read_only):
    src, config = _fb_checkpoint(tmp_path)
    out = tmp_path / "o.pdparams"
    assert_one_line_error(run_tool(CONVERT, "--from", "fb", tmp_path / "none.pyth", "-o", out), CONVERT,
                          "none.pyth", "not found")
    corrupt = tmp_path / "corrupt.pyth"
    corrupt.write_bytes(src.read_bytes()[:5000])
    assert_one_line_error(run_tool(CONVERT, "--from", "fb", corrupt, "-o", out), CONVERT, "corrupt.pyth",
                          "could not be read as a torch checkpoint")
    assert_one_line_error(run_tool(CONVERT, "--from", "hf", src, "-o", out), CONVERT, "is not a folder", "--from hf")
    assert_one_line_error(run_tool(CONVERT, "--from", "fb", tmp_path, "-o", out), CONVERT, "is a folder", "--from hf")
    assert_one_line_error(run_tool(CONVERT, "--from", "pt", src, "-o", out), CONVERT, "--from", code=2)
    assert_one_line_error(run_tool(CONVERT, "--from", "fb", src, "-o", tmp_path), CONVERT, "is a folder", code=2)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(run_tool(CONVERT, "--from", "fb", src, "-o", blocker / "o.pdparams", "-c", config),
                          CONVERT, str(blocker), "not a folder")
    locked = tmp_path / "ro"
    locked.mkdir()
    proc = run_tool(CONVERT, "--from", "fb", src, "-o", locked / "o.pdparams", "-c", config, env=read_only(locked))
    assert_one_line_error(proc, CONVERT, str(locked), "read-only")
    proc = run_tool(CONVERT, "--from", "fb", src, "-o", out, "-c", config, preexec_fn=file_size_limit(20000))
    assert_one_line_error(proc, CONVERT, str(out), "file too large")
    assert not out.exists() and not list(tmp_path.glob("o.pdparams*"))


PYTHON_TRACEBACK = re.compile(r"^Traceback \(most recent call last\)", re.M)
# What a worker's log may end with after Ctrl-C of a distributed run (docs/reliability.md, "Interrupts"):
WORKER_ENDINGS = ("main.py: interrupted",
                  "main.py: error: another process of this distributed run stopped",  # its collective failed
                  "[SignalInfo: *** SIGABRT")  # Paddle's own report of a gloo failure inside its C++ backward


@pytest.mark.slow
def test_ctrl_c_of_a_distributed_run_leaves_no_python_traceback(demo_data, tmp_path):
    """Ctrl-C in a terminal signals the launcher and its workers. Every worker ends with ``interrupted``, or
    (left waiting in a collective by a worker that stopped first) with a line saying so or Paddle's own C++
    abort report; never a Python traceback, on the console or in a worker's log."""
    logs = tmp_path / "launch"
    args = train_args(demo_data, tmp_path / "out")
    args[args.index("GRADIENT_ACCUMULATION.global_batch_size=2")] = "GRADIENT_ACCUMULATION.global_batch_size=4"
    proc = subprocess.Popen([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                             str(logs), str(REPO / "main.py"), *map(str, args)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**BASE_ENV, "OMP_NUM_THREADS": "1"})
    lines = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    deadline = time.time() + 180
    while not any("saved" in line for line in list(lines)):
        assert proc.poll() is None and time.time() < deadline, "".join(lines[-30:])
        time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the distributed run did not stop after Ctrl-C") from None
    time.sleep(0.5)
    assert proc.returncode != 0 and not PYTHON_TRACEBACK.search("".join(lines)), "".join(lines[-40:])
    endings = []
    for rank in (0, 1):
        text = (logs / f"workerlog.{rank}").read_text(errors="replace")
        assert not PYTHON_TRACEBACK.search(text), text[-3000:]
        tail = text.strip().splitlines()[-1].strip()
        assert any(tail.startswith(ending) for ending in WORKER_ENDINGS), text[-3000:]
        endings.append(tail)
    assert "main.py: interrupted" in endings, endings  # the interrupt itself is reported
    assert_checkpoints_loadable(tmp_path / "out", allow_tmp=True)
