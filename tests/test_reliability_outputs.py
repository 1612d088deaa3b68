"""Issue 26: what the tools write.

- class 2 / 7: a tool never writes over its input (common/overwrite.py, one check used by every tool that writes);
- class 4: the output location is checked before any work;
- class 6: multi-file outputs are staged and moved into place whole (common/staging.py);
- class 8: the smaller ones (compare_precisions.py on a folder, the converter's --trust-pickle advice, one list of
  video extensions with skipped entries reported, videos shorter than a clip).

Tools run in subprocesses, as a user runs them; the helpers' rules are also checked directly.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import paddle
import pytest

from paddlevideo.common.errors import OutputError
from paddlevideo.common.overwrite import overwritten_input, refuse_overwriting_inputs
from paddlevideo.common.staging import remove_leftovers, staged_files, staged_folder

from conftest import K400_CONFIG, REPO, TINY_OVERRIDES
from engine_helpers import write_video

DEMO_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"
FIGURES = ("attention_grid.png", "attention.gif", "temporal_share.png", "attention.json")


def run_tool(tool, *args, env=None, timeout=300):
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "PADDLEVIDEO_FAST_CPU_OPS": "0", **(env or {})}
    full_env.pop("PADDLEVIDEO_DEBUG", None)
    return subprocess.run([sys.executable, str(REPO / tool), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, env=full_env)


def one_line_error(done, prog, *words):
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith(f"{prog}: error:")]
    assert len(errors) == 1 and done.stderr.strip().splitlines()[-1] == errors[0], done.stderr[-3000:]
    assert "unexpected" not in errors[0], errors[0]
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def snapshot(folder):
    """``{relative path: sha256}`` of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Two demo val clips, their label list, and random weights of the demo model."""
    from paddlevideo.loader.demo_data import make_demo_dataset
    from paddlevideo.modeling.builder import build_model
    from paddlevideo.utils import get_config

    root = tmp_path_factory.mktemp("outputs")
    make_demo_dataset(str(root / "demo"), num_train=0, num_val=2, seed=0)
    paddle.seed(0)
    weights = root / "demo.pdparams"
    paddle.save(build_model(get_config(str(DEMO_CONFIG), show=False).MODEL).state_dict(), str(weights))
    return root


# ---------------------------------------------------------------- class 2 / 7: never over an input

def test_the_overwrite_rule(tmp_path):
    video, folder = tmp_path / "a.avi", tmp_path / "model"
    video.write_bytes(b"v")
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"w")
    os.link(video, tmp_path / "hard.avi")
    os.symlink(video, tmp_path / "soft.avi")
    inputs = [("-i", video), ("src", folder)]
    for same in (video, tmp_path / "hard.avi", tmp_path / "soft.avi", tmp_path / "x" / ".." / "a.avi"):
        assert overwritten_input(same, inputs) == ("-i", video), same
    assert overwritten_input(folder / "model.safetensors", inputs) == ("src", folder)  # a file of an input folder
    assert overwritten_input(folder / "new.pdparams", inputs) is None  # beside it, replacing nothing: fine
    assert overwritten_input(tmp_path / "b.avi", inputs) is None
    assert overwritten_input(tmp_path, inputs, replaces_folder=True) == ("-i", video)  # the folder holds it
    with pytest.raises(OutputError, match=r"-o '.*soft\.avi' is the input -i '.*a\.avi'; a tool never writes over "
                                          "its input"):
        refuse_overwriting_inputs([("-o", tmp_path / "soft.avi")], inputs)


def test_converter_refuses_to_write_over_its_source(tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"the source weights")
    before = snapshot(folder)
    done = run_tool("tools/convert_checkpoint.py", "--from", "hf", folder, "-o", folder / "model.safetensors")
    one_line_error(done, "convert_checkpoint.py", "would replace a file inside the input the source", str(folder))
    pyth = tmp_path / "release.pyth"
    pyth.write_bytes(b"the source checkpoint")
    done = run_tool("tools/convert_checkpoint.py", "--from", "fb", pyth, "-o", tmp_path / "." / "release.pyth")
    one_line_error(done, "convert_checkpoint.py", "is the input the source")
    assert snapshot(folder) == before and pyth.read_bytes() == b"the source checkpoint"


def test_predict_visualize_never_writes_over_a_video_it_predicts(demo, tmp_path):
    """An earlier run's annotated video in the input folder is a video too: ``a.avi`` would be drawn to
    ``a.avi.mp4``, the next input."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(demo / "demo" / "val" / "000000.avi", folder / "a.avi")
    shutil.copy(demo / "demo" / "val" / "000001.avi", folder / "a.avi.mp4")
    before = snapshot(folder)
    done = run_tool("tools/predict.py", "-c", DEMO_CONFIG, "-i", folder, "--model_file", tmp_path / "m.pdmodel",
                    "--visualize", folder)
    one_line_error(done, "predict.py", "--visualize", "is the input --input_file", "a.avi.mp4")
    assert snapshot(folder) == before


def test_visualize_attention_never_replaces_a_folder_with_an_input_or_other_files(demo, tmp_path):
    out = tmp_path / "out"
    (out / "clip").mkdir(parents=True)
    video = out / "clip" / "clip.avi"  # its own output folder would be out/clip
    shutil.copy(demo / "demo" / "val" / "000000.avi", video)
    args = ["-c", DEMO_CONFIG, "-w", demo / "demo.pdparams", "-o", out]
    done = run_tool("tools/visualize_attention.py", *args, "-i", video)
    one_line_error(done, "visualize_attention.py", "holds files this tool does not write (clip.avi)")
    (out / "other").mkdir()
    shutil.copy(video, out / "other" / "x.avi")
    (out / "other" / "x").mkdir()
    (out / "other" / "x" / "attention.json").write_text("{}")  # an earlier run's folder: replaceable
    (out / "other" / "x" / "notes.txt").write_text("mine")  # ... but not with the user's file in it
    done = run_tool("tools/visualize_attention.py", *args[:-1], out / "other", "-i", out / "other" / "x.avi")
    one_line_error(done, "visualize_attention.py", "notes.txt", "it is not replaced")
    assert (out / "other" / "x" / "notes.txt").read_text() == "mine" and video.is_file()


def test_export_never_writes_over_its_config(demo, tmp_path):
    from paddlevideo.utils import get_config
    from paddlevideo.config import to_plain

    out = tmp_path / "inference"
    out.mkdir()
    config = out / "TimeSformer_demo.json"  # a JSON config where the PIR export writes its program
    config.write_text(json.dumps(to_plain(get_config(str(DEMO_CONFIG), show=False))))
    before = config.read_text()
    done = run_tool("tools/export_model.py", "-c", config, "-p", demo / "demo.pdparams", "-o", out, "--format", "pir")
    one_line_error(done, "export_model.py", "is the input -c")
    assert config.read_text() == before and sorted(p.name for p in out.iterdir()) == ["TimeSformer_demo.json"]


def test_make_demo_data_never_writes_over_another_dataset(tmp_path):
    folder = tmp_path / "k400"
    folder.mkdir()
    (folder / "train.list").write_text("abseiling/x.mp4 0\n")
    done = run_tool("tools/make_demo_data.py", "--output", folder, "--num_train", 2, "--num_val", 1)
    one_line_error(done, "make_demo_data.py", "holds train.list without demo_data.json")
    assert (folder / "train.list").read_text() == "abseiling/x.mp4 0\n"


def test_list_builders_never_write_over_their_inputs(tmp_path):
    out = tmp_path / "k400"
    (out / "videos").mkdir(parents=True)
    (out / "train.csv").write_text("label,youtube_id,time_start,time_end,split\nabseiling,aaa,10,20,train\n")
    (out / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nabseiling,ccc,5,15,val\n")
    labels = out / "Kinetics-400_label_list.txt"  # the published list, given where the builder writes its own
    labels.write_text("0 abseiling\n")
    before = snapshot(out)
    done = run_tool("tools/data/k400/build_lists.py", "--train_csv", out / "train.csv", "--val_csv",
                    out / "validate.csv", "--video_dir", out / "videos", "--output", out, "--label_list", labels)
    one_line_error(done, "build_lists.py", "is the input --label_list")
    assert snapshot(out) == before
    notes = tmp_path / "ucfTrainTestlist"
    notes.mkdir()
    (notes / "classInd.txt").write_text("1 Archery\n")
    (notes / "trainlist01.txt").write_text("Archery/v_Archery_g01_c01.avi 1\n")
    (notes / "testlist01.txt").write_text("Archery/v_Archery_g02_c01.avi\n")
    (notes / "ucf101_label_list.txt").write_text("an earlier run's\n")  # an output beside the inputs: replaced
    done = run_tool("tools/data/ucf101/build_lists.py", "--annotations", notes, "--output", notes)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (notes / "ucf101_label_list.txt").read_text() == "0 Archery\n"
    assert sorted(p.name for p in notes.iterdir()) == ["classInd.txt", "testlist01.txt", "train_split1.list",
                                                       "trainlist01.txt", "ucf101_label_list.txt", "val_split1.list"]


# ---------------------------------------------------------------- class 4: the output location first

def test_visualize_attention_checks_its_output_folder_before_any_video(demo):
    done = run_tool("tools/visualize_attention.py", "-c", DEMO_CONFIG, "-w", demo / "demo.pdparams",
                    "-i", demo / "demo" / "val", "-o", "/sys/att")
    one_line_error(done, "visualize_attention.py", "-o '/sys/att' cannot be created or written")
    assert "000000" not in done.stderr and "000001" not in done.stderr  # no video was blamed or even read


# ---------------------------------------------------------------- class 6: whole or not at all

def test_staged_folder_is_whole_or_untouched(tmp_path):
    final = tmp_path / "out" / "clip"
    final.mkdir(parents=True)
    for name in ("a.png", "b.json"):
        (final / name).write_text("old " + name)
    with pytest.raises(KeyboardInterrupt):  # stopped half-way: the old folder stays as it was, whole
        with staged_folder(final, ("a.png", "b.json")) as staging:
            open(os.path.join(staging, "a.png"), "w").write("new a.png")
            raise KeyboardInterrupt
    assert snapshot(final) == snapshot_of({"a.png": "old a.png", "b.json": "old b.json"}, tmp_path / "expect1")
    assert sorted(os.listdir(tmp_path / "out")) == ["clip"]  # no staging folder left
    with staged_folder(final, ("a.png", "b.json")) as staging:  # completed: every file new, none old
        for name in ("a.png", "b.json"):
            open(os.path.join(staging, name), "w").write("new " + name)
    assert snapshot(final) == snapshot_of({"a.png": "new a.png", "b.json": "new b.json"}, tmp_path / "expect2")
    assert sorted(os.listdir(tmp_path / "out")) == ["clip"]
    (final / "mine.txt").write_text("the user's")
    with pytest.raises(OutputError, match="holds files this tool does not write"):
        with staged_folder(final, ("a.png", "b.json")):
            pass
    assert (final / "mine.txt").read_text() == "the user's"


def snapshot_of(files, folder):
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return snapshot(folder)


def test_staged_files_move_in_in_order_and_leftovers_of_killed_runs_go(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".model.staging-{int(dead.stdout)}-abc"
    leftover.mkdir()
    (leftover / "model.pdiparams").write_text("half")
    mine = tmp_path / f".model.staging-{os.getpid()}-xyz"  # this process's own: not a leftover
    mine.mkdir()
    assert remove_leftovers(str(tmp_path), "model") == [str(leftover)]
    mine.rmdir()
    with staged_files(tmp_path, "model") as stage:
        for name in ("model.pdmodel", "model.pdiparams", "model.provenance.json"):
            open(stage.path(name), "w").write(name)
        moved = stage.commit(order=["model.provenance.json", "model.pdiparams"])
    assert list(moved) == ["model.provenance.json", "model.pdiparams", "model.pdmodel"]
    assert sorted(os.listdir(tmp_path)) == ["model.pdiparams", "model.pdmodel", "model.provenance.json"]


_FULL_DISK_ON = r'''
"""Test shim: writing a file whose name contains PV_FAIL_NAME fails with ENOSPC (a disk that fills mid-way)."""
import builtins, errno, io, os

_NAME = os.environ.get("PV_FAIL_NAME")
if _NAME:
    _open = builtins.open

    def _guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+") and _NAME in os.path.basename(file):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _open(file, mode, *args, **kwargs)

    builtins.open = io.open = _guarded_open
'''


def test_visualize_attention_never_leaves_a_mix_of_two_runs(demo, tmp_path):
    """Over an earlier run's folder, a run that fails while writing (a disk that fills after two of the four
    files) leaves the earlier folder whole, and stops naming the output, not the video."""
    out = tmp_path / "out"
    (out / "000000").mkdir(parents=True)
    for name in FIGURES:
        (out / "000000" / name).write_text(f"earlier run: {name}")
    before = snapshot(out)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(_FULL_DISK_ON)
    done = run_tool("tools/visualize_attention.py", "-c", DEMO_CONFIG, "-w", demo / "demo.pdparams",
                    "-i", demo / "demo" / "val" / "000000.avi", "-o", out,
                    env={"PYTHONPATH": f"{shim}{os.pathsep}{REPO}", "PV_FAIL_NAME": "temporal_share"})
    one_line_error(done, "visualize_attention.py", f"-o: cannot write '{out / '000000'}'", "no space left")
    assert snapshot(out) == before  # the earlier run's four files, none of this run's
    assert sorted(os.listdir(out)) == ["000000"]  # and no staging folder
    done = run_tool("tools/visualize_attention.py", "-c", DEMO_CONFIG, "-w", demo / "demo.pdparams",
                    "-i", demo / "demo" / "val" / "000000.avi", "-o", out)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(os.listdir(out / "000000")) == sorted(FIGURES)
    assert json.loads((out / "000000" / "attention.json").read_text())["video"].endswith("000000.avi")


# ---------------------------------------------------------------- class 8: the smaller ones

@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    from paddlevideo.deploy.export import export_model
    from paddlevideo.modeling.builder import build_model
    from paddlevideo.utils import get_config
    from paddlevideo.config import save_config

    root = tmp_path_factory.mktemp("tiny_export")
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES + ["INFERENCE.label_file="], show=False)
    paddle.seed(5)
    paddle.save(build_model(cfg.MODEL).state_dict(), str(root / "w.pdparams"))
    written = export_model(cfg, str(root / "w.pdparams"), str(root / "exp"))
    return {"root": root, "config": save_config(cfg, root / "tiny.yaml"), "model": written["model"],
            "weights": root / "w.pdparams"}


def test_one_list_of_video_extensions_and_nothing_skipped_silently(tiny_export, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a.m4v", "b.mpg", "c.MPEG", "d.avi"):  # AVI content under each name (the readers probe it)
        os.replace(write_video(tmp_path / "clip.avi", num_frames=8), folder / name)
    (folder / "notes.txt").write_text("not a video")
    os.symlink(folder / "gone.avi", folder / "e.avi")  # a dangling link
    (folder / "sub").mkdir()
    done = run_tool("tools/predict.py", "-c", tiny_export["config"], "-i", folder, "--model_file",
                    tiny_export["model"], "--output", "json")
    assert done.returncode == 1, done.stderr[-3000:]
    predicted = [json.loads(line)["file"] for line in done.stdout.splitlines()]
    assert [os.path.basename(p) for p in predicted] == ["a.m4v", "b.mpg", "c.MPEG", "d.avi", "e.avi"]
    assert "e.avi: broken symbolic link" in done.stderr and "1 of 5 video(s) could not be predicted" in done.stderr
    assert "2 entries of" in done.stderr and "notes.txt (not a video)" in done.stderr and "sub/ (a folder" in done.stderr
    features = run_tool("tools/extract_features.py", "-c", tiny_export["config"], "-w", tiny_export["weights"],
                        "--input_file", folder, "-o", tmp_path / "features")
    assert features.returncode == 1 and "1 of 5 video(s) could not be read" in features.stderr, features.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == ["a.npy", "b.npy", "c.npy", "d.npy"]


def test_videos_shorter_than_a_clip_are_scored_with_one_warning(tiny_export, tmp_path):
    for frames in (1, 3, 4):
        write_video(tmp_path / f"f{frames}.avi", num_frames=frames, seed=frames)
    done = run_tool("tools/predict.py", "-c", tiny_export["config"], "-i", tmp_path, "--model_file",
                    tiny_export["model"])
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 2, done.stderr  # the 4-frame video fills the tiny model's 4-frame clip
    assert "f1.avi' has 1 frame(s)" in warnings[0] and "3 of its 4 sampled frames repeat others" in warnings[0]
    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.utils import get_config

    pipeline = build_pipeline(get_config(tiny_export["config"], show=False).PIPELINE.test, "test")
    distinct = len(set(pipeline({"filename": str(tmp_path / "f3.avi")})["frame_idx"].tolist()))
    assert distinct < 4 and "f3.avi' has 3 frame(s)" in warnings[1]
    assert f"{4 - distinct} of its 4 sampled frames repeat others" in warnings[1]
    assert done.stdout.count("Current video file:") == 3


@pytest.mark.parametrize("content, kind", [(b"", "an empty file"), (b"<html>not found</html>\n", "a text file")])
def test_converter_does_not_advise_trust_pickle_where_it_cannot_help(tmp_path, content, kind):
    pyth = tmp_path / "release.pyth"
    pyth.write_bytes(content)
    done = run_tool("tools/convert_checkpoint.py", "--from", "fb", pyth, "-o", tmp_path / "o.pdparams")
    line = one_line_error(done, "convert_checkpoint.py", str(pyth), f"is not a torch checkpoint ({kind})")
    assert "--trust-pickle" not in line


def test_compare_precisions_reads_a_folder_of_clips(tiny_export, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for seed in range(2):
        write_video(folder / f"c{seed}.avi", num_frames=8, seed=seed)
    done = run_tool("tools/compare_precisions.py", "-c", tiny_export["config"], "--clips", folder, "--work_dir",
                    tmp_path / "work", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 clips x 3 views" in done.stdout
    rows = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith("openvino ")}
    assert {"fp32", "int8"} <= set(rows)
    assert float(rows["fp32"].split()[2]) > 0.999  # cosine to float64 of the fp32 export
    record = json.loads((tmp_path / "work" / "export" / "TimeSformer.int8.provenance.json").read_text())
    assert record["precision"] == "int8"
