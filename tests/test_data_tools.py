"""Data preparation tools: K400 / UCF-101 list builders and the demo generator."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from paddlevideo.loader.decoders import open_video
from paddlevideo.loader.demo_data import make_clip, make_demo_dataset, write_avi

from helpers import load_tool

REPO = Path(__file__).resolve().parents[1]

k400 = load_tool("tools/data/k400/build_lists.py")
ucf101 = load_tool("tools/data/ucf101/build_lists.py")


def write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        writer.writerows(rows)


def tiny_clip(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_avi(path, np.full((3, 32, 32, 3), 128, np.uint8), fps=25)


def test_k400_lists_flat_and_class_folders(tmp_path):
    videos = tmp_path / "videos"
    train = [["air drumming", "aaa", 10, 20, "train"], ["abseiling", "bbb", 0, 10, "train"],
             ["zumba", "ccc", 5, 15, "train"], ["abseiling", "gone", 1, 11, "train"]]
    val = [["zumba", "ddd", 30, 40, "val"], ["air drumming", "eee", 2, 12, "val"]]
    write_csv(tmp_path / "train.csv", train)
    write_csv(tmp_path / "validate.csv", val)
    tiny_clip(videos / "train" / "air drumming" / "aaa_000010_000020.mp4")  # class sub-folder
    tiny_clip(videos / "train" / "abseiling" / "bbb_000000_000010.mp4")
    tiny_clip(videos / "ccc_000005_000015.avi")  # flat
    tiny_clip(videos / "val" / "ddd_000030_000040.mp4")
    (videos / "val" / "eee_000002_000012.mp4").write_bytes(b"broken")
    summary = k400.build_lists(str(tmp_path / "train.csv"), str(tmp_path / "validate.csv"), str(videos),
                               str(tmp_path / "out"), check=True, progress=False)
    out = tmp_path / "out"
    assert (out / "Kinetics-400_label_list.txt").read_text() == "0 abseiling\n1 air_drumming\n2 zumba\n"
    assert sorted((out / "train.list").read_text().splitlines()) == sorted([
        "train/air drumming/aaa_000010_000020.mp4 1", "train/abseiling/bbb_000000_000010.mp4 0",
        "ccc_000005_000015.avi 2"])
    assert (out / "val.list").read_text().splitlines() == ["val/ddd_000030_000040.mp4 2"]
    assert summary["missing"] == ["train gone_000001_000011 (abseiling)"]
    assert summary["broken"] == ["val val/eee_000002_000012.mp4"]
    problems = (out / "problems.txt").read_text()
    assert "gone_000001_000011" in problems and "eee_000002_000012" in problems


def test_k400_label_list_matches_published(shared_dir, tmp_path):
    published = (shared_dir / "data" / "k400" / "Kinetics-400_label_list.txt").read_text()
    names = [line.split(maxsplit=1)[1].replace("_", " ") for line in published.splitlines()]
    rng = np.random.default_rng(0)
    rows = [[name, f"id{i}", 0, 10, "train"] for i, name in enumerate(rng.permutation(names))]
    write_csv(tmp_path / "train.csv", rows)  # every class has training clips; ids come from train.csv
    write_csv(tmp_path / "validate.csv", [[name, f"v{i}", 0, 10, "val"] for i, name in enumerate(names[:50])])
    (tmp_path / "videos").mkdir()
    summary = k400.build_lists(str(tmp_path / "train.csv"), str(tmp_path / "validate.csv"),
                               str(tmp_path / "videos"), str(tmp_path / "out"), progress=False)
    assert summary["classes"] == 400 and len(summary["missing"]) == 450
    assert (tmp_path / "out" / "Kinetics-400_label_list.txt").read_text() == published


def test_ucf101_lists(tmp_path):
    notes = tmp_path / "ucfTrainTestlist"
    notes.mkdir()
    (notes / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n3 YoYo\n")
    (notes / "trainlist02.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
                                           "YoYo/v_YoYo_g10_c02.avi 3\nArchery/v_Archery_g09_c01.avi 2\n")
    (notes / "testlist02.txt").write_text("Archery/v_Archery_g01_c01.avi\nYoYo/v_YoYo_g02_c03.avi\n")
    videos = tmp_path / "videos"
    for name in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "YoYo/v_YoYo_g10_c02.avi",
                 "Archery/v_Archery_g01_c01.avi", "YoYo/v_YoYo_g02_c03.avi"):
        tiny_clip(videos / name)
    summary = ucf101.build_lists(str(notes), 2, str(tmp_path / "out"), str(videos), progress=False)
    out = tmp_path / "out"
    assert (out / "train_split2.list").read_text().splitlines() == [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 0", "YoYo/v_YoYo_g10_c02.avi 2"]
    assert (out / "val_split2.list").read_text().splitlines() == [
        "Archery/v_Archery_g01_c01.avi 1", "YoYo/v_YoYo_g02_c03.avi 2"]
    assert (out / "ucf101_label_list.txt").read_text() == "0 ApplyEyeMakeup\n1 Archery\n2 YoYo\n"
    assert summary["missing"] == ["train Archery/v_Archery_g09_c01.avi"]
    (notes / "trainlist01.txt").write_text("Archery/v_x.avi 3\n")
    with pytest.raises(ValueError, match="trainlist01.txt:1: label 3 disagrees"):
        ucf101.build_lists(str(notes), 1, str(out), progress=False)


@pytest.mark.parametrize("tool", ["tools/data/k400/build_lists.py", "tools/data/ucf101/build_lists.py",
                                  "tools/make_demo_data.py"])
def test_cli_help(tool):
    done = subprocess.run([sys.executable, str(REPO / tool), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "usage" in done.stdout


def test_cli_bad_input_fails_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "tools/data/ucf101/build_lists.py"), "--annotations",
                           str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "classInd.txt" in done.stderr


def decoded_frames(root, split_list):
    frames = []
    for line in open(split_list):
        with open_video(str(root / line.split()[0]), "cv2") as reader:
            frames.append(reader.get_frames(range(reader.num_frames)))
    return np.stack(frames)


def test_demo_generator_deterministic(tmp_path):
    first = make_demo_dataset(str(tmp_path / "a"), num_train=8, num_val=4, seed=7)
    second = make_demo_dataset(str(tmp_path / "b"), num_train=8, num_val=4, seed=7)
    other = make_demo_dataset(str(tmp_path / "c"), num_train=8, num_val=4, seed=8)
    for split in ("train", "val"):
        assert open(first[split]).read() == open(second[split]).read()
        a = decoded_frames(tmp_path / "a", first[split])
        np.testing.assert_array_equal(a, decoded_frames(tmp_path / "b", second[split]))
        assert not np.array_equal(a, decoded_frames(tmp_path / "c", other[split]))
    assert a.shape == (4, 8, 32, 32, 3)
    assert open(first["label_list"]).read() == "0 right\n1 left\n2 down\n3 up\n"


def test_demo_manifest_marks_current_data(tmp_path):
    import json

    from paddlevideo.loader.demo_data import MANIFEST, demo_dataset_is_current

    folder = tmp_path / "demo"
    assert not demo_dataset_is_current(str(folder), num_train=8, num_val=4, seed=7)  # nothing there yet
    make_demo_dataset(str(folder), num_train=8, num_val=4, seed=7)
    assert demo_dataset_is_current(str(folder), num_train=8, num_val=4, seed=7)
    assert not demo_dataset_is_current(str(folder), num_train=8, num_val=4, seed=8)
    assert not demo_dataset_is_current(str(folder), num_train=16, num_val=4, seed=7)
    manifest = folder / MANIFEST
    stale = dict(json.loads(manifest.read_text()), generator_version=1)  # made by an older generator
    manifest.write_text(json.dumps(stale))
    assert not demo_dataset_is_current(str(folder), num_train=8, num_val=4, seed=7)
    manifest.write_text("{not json")
    assert not demo_dataset_is_current(str(folder), num_train=8, num_val=4, seed=7)


def shape_centre(frames):
    """Per-frame centre (x, y) of the pixels that differ most from the frame's median colour."""
    centres = []
    for frame in frames.astype(np.float64):
        distance = np.abs(frame - np.median(frame.reshape(-1, 3), axis=0)).sum(axis=2)
        ys, xs = np.nonzero(distance > distance.max() * 0.5)
        centres.append((xs.mean(), ys.mean()))
    return np.array(centres)


def test_demo_classes_differ_only_in_motion():
    rng = np.random.default_rng(0)
    for label, axis, sign in ((0, 0, 1), (1, 0, -1), (2, 1, 1), (3, 1, -1)):
        centre = shape_centre(make_clip(rng, label, num_frames=8, size=32))
        assert sign * (centre[-1, axis] - centre[0, axis]) > 5  # moves along its axis, in its direction
        assert np.ptp(centre[:, 1 - axis]) < 1.5  # and not across it
    # a single frame says nothing: the position of one frame has the same distribution for every class
    positions = {label: [] for label in range(4)}
    for i in range(800):
        label = i % 4
        centre = shape_centre(make_clip(np.random.default_rng([1, i]), label, num_frames=8, size=32))
        positions[label].append(centre[rng.integers(8)])
    means = np.array([np.mean(positions[label], axis=0) for label in range(4)])
    assert np.abs(means - means.mean(axis=0)).max() < 1.5  # all classes centred alike (on both axes)
