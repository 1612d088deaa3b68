"""Lists are checked before the first step: every line parsed (BOM, CRLF, blank lines), labels present,
integer and inside the model's classes in every split, missing videos counted up front."""


import pytest

from engine_helpers import capture_logs  # noqa: F401  (a fixture)
from engine_helpers import DEMO_CONFIG, data_overrides, demo_cfg, error_line, run_main, write_video
from paddlevideo.loader.list_files import ListFileError, ListFileNotFoundError, read_list_file
from paddlevideo.tasks.loaders import build_loader


def write_bytes(path, data):
    path.write_bytes(data)
    return path


def test_bom_crlf_and_blank_lines_are_fine(tmp_path):
    text = "\ufeffa b/first clip.avi 3\r\n\r\nsecond.avi 0\r\n   \n third.avi 12  \n"
    lst = write_bytes(tmp_path / "l.list", text.encode("utf-8"))
    items = read_list_file(str(lst), "root")
    assert [(i["filename"], i["labels"], i["line"]) for i in items] == [
        ("root/a b/first clip.avi", 3, 1), ("root/second.avi", 0, 3), ("root/third.avi", 12, 5)]
    # a bare CR (old Mac) ends a line too
    items = read_list_file(str(write_bytes(tmp_path / "cr.list", b"x.avi 1\ry.avi 2\r")))
    assert [i["filename"] for i in items] == ["x.avi", "y.avi"]


@pytest.mark.parametrize("content, line, words", [
    (b"a.avi 1\nb.avi\n", 2, "no label"),
    (b"a.avi 1\n\nb.avi x\n", 3, "'x' is not an integer"),
    (b"a.avi 1.0\n", 1, "'1.0' is not an integer"),
    (b"a.avi 1\nb.avi 1_0\n", 2, "'1_0' is not an integer"),
    (b"a.avi 1\n\xff\xfeb.avi 2\n", 2, "not UTF-8"),
])
def test_bad_lines_name_file_and_line(tmp_path, content, line, words):
    lst = write_bytes(tmp_path / "bad.list", content)
    with pytest.raises(ListFileError, match=f"bad.list:{line}: .*{words}"):
        read_list_file(str(lst))


def test_missing_and_empty_lists(tmp_path):
    with pytest.raises(ListFileNotFoundError, match="nope.list"):
        read_list_file(str(tmp_path / "nope.list"))
    with pytest.raises(ListFileError, match="empty"):
        read_list_file(str(write_bytes(tmp_path / "e.list", b"\xef\xbb\xbf\r\n\n")))


@pytest.fixture
def clips(tmp_path):
    """Three readable 32x32 clips and a demo config whose train / valid / test lists are rewritten per test."""
    for name in ("a", "b", "c"):
        write_video(tmp_path / f"{name}.avi")
    return tmp_path


def cfg_with_lists(folder, **lists):
    cfg = demo_cfg(folder, folder / "out")
    for mode, lines in lists.items():
        path = folder / f"{mode}.list"
        path.write_text("".join(f"{line}\n" for line in lines))
        cfg.DATASET[mode].file_path = str(path)
    return cfg


@pytest.mark.parametrize("mode", ["train", "valid", "test"])
@pytest.mark.parametrize("label", [4, -1])
def test_labels_outside_num_classes_in_every_split(clips, mode, label):
    cfg = cfg_with_lists(clips, **{mode: ["a.avi 0", "b.avi 3", f"c.avi {label}"]})
    with pytest.raises(ListFileError, match=rf"{mode}.list:3: label {label} is outside \[0, 4\) "
                                            r"\(MODEL.head.num_classes = 4\)"):
        build_loader(cfg, mode)
    cfg.MODEL.head.num_classes = 5
    if label == 4:  # with 5 classes the same list is valid
        assert len(build_loader(cfg, mode)[1]) == 3


def test_missing_videos_counted_up_front(clips, capture_logs):
    names = [f"gone{i}.avi 1" for i in range(7)]
    cfg = cfg_with_lists(clips, train=["a.avi 0", *names, "b.avi 1"], test=["a.avi 0", *names, "b.avi 1"])
    _, train = build_loader(cfg, "train")
    assert [item["filename"] for item in train.info] == [str(clips / "a.avi"), str(clips / "b.avi")]
    warning = [r.getMessage() for r in capture_logs.records if "missing" in r.getMessage()][0]
    assert "7 of the 9 videos" in warning and "gone0.avi" in warning and "gone4.avi" in warning
    assert "gone5.avi" not in warning and "and 2 more" in warning
    _, test = build_loader(cfg, "test")
    assert len(test) == 9  # kept: the test report counts them as skipped


def test_a_list_where_no_video_exists_is_an_error(clips):
    cfg = cfg_with_lists(clips, valid=["x/1.avi 0", "x/2.avi 1"])
    with pytest.raises(ListFileError, match=r"none of the 2 videos listed in .*valid.list exists \(first: line 1: "
                                            r"'.*x/1.avi'\); check DATASET.valid.data_prefix"):
        build_loader(cfg, "valid")


def test_cli_bad_list_is_one_line_before_training(clips):
    (clips / "train.list").write_text("a.avi 0\nb.avi 9\n")
    (clips / "val.list").write_text("a.avi 0\n")
    proc = run_main(["-c", str(DEMO_CONFIG), "-o", *data_overrides(clips), f"output_dir={clips / 'out'}"],
                    timeout=240)
    line = error_line(proc)
    assert "train.list:2: label 9 is outside [0, 4)" in line
    assert "epoch:" not in proc.stdout and not list((clips / "out").glob("*.pdparams"))


def test_cli_test_with_no_existing_video_is_one_line(clips):
    (clips / "val.list").write_text("nothing/1.avi 0\nnothing/2.avi 1\n")
    weights = clips / "w.pdparams"
    _save_demo_weights(weights)
    proc = run_main(["--test", "-c", str(DEMO_CONFIG), "-w", str(weights), "-o", *data_overrides(clips),
                     f"output_dir={clips / 'out'}"], timeout=240)
    assert "none of the 2 videos listed in" in error_line(proc)


def _save_demo_weights(path):
    import paddle

    from paddlevideo.modeling.builder import build_model
    from paddlevideo.config import get_config

    paddle.save(build_model(get_config(str(DEMO_CONFIG), show=False).MODEL).state_dict(), str(path))
