"""Issue 26, class 5: one reader for label lists, checked against the model (loader/labels.py), used by every tool
that names classes; a bad list is one line naming the file and the flag (or config key)."""

import logging
import subprocess
import sys

import pytest

from paddlevideo.loader.labels import load_label_names, read_label_names
from paddlevideo.common.errors import InputError

from conftest import REPO

TEN = "".join(f"{i} class{i}\n" for i in range(10))


class Warnings(logging.Handler):
    """The project logger's records while the block runs: ``with Warnings() as seen: ...``, then ``seen.lines``."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def __enter__(self):
        logging.getLogger("paddlevideo").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("paddlevideo").removeHandler(self)


def labels(tmp_path, content, name="labels.txt"):
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return str(path)


@pytest.mark.parametrize("content, words", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["binary file"]),
    ("0 caf\xe9\n".encode("latin-1"), ["not UTF-8 text (byte 5)"]),
    ("", ["is empty"]),
    ("".join(f"{i} c{i}\n" for i in range(9)), ["has 9 class names but the model has 10 classes",
                                                "MODEL.head.num_classes"]),
    ("".join(f"{i} c{i}\n" for i in range(11)), ["has 11 class names but the model has 10 classes"]),
    (TEN.replace("7 class7", "3 class7"), ["line 8: class id 3 appears again (first on line 4)"]),
    (TEN.replace("4 class4", "four class4"), ["line 5: 'four' is not an integer class id"]),
    (TEN.replace("4 class4", "4.0 class4"), ["line 5: '4.0' is not an integer class id"]),
    ("".join(f"{i}.0 c{i}\n" for i in range(10)), ["line 1: '0.0' is not an integer class id"]),
    (TEN.replace("4 class4", "4"), ["line 5: class id 4 has no name"]),
    (TEN.replace("9 class9", "12 class9"), ["must number its classes 0..9 once each: id 9 is missing"]),
    (TEN.replace("0 class0", "-1 class0"), ["class id -1 is negative"]),
])
def test_a_bad_list_is_one_line_naming_the_file_and_the_flag(tmp_path, content, words):
    path = labels(tmp_path, content)
    with pytest.raises(InputError) as caught:
        load_label_names(path, 10, "--label_file")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"label file '{path}' (--label_file)"), message
    for word in words:
        assert word in message, (word, message)


def test_good_lists(tmp_path):
    assert load_label_names(labels(tmp_path, "\ufeff0 abseiling\r\n1 air drumming\r\n\r\n2 zumba\n"), 3) == {
        0: "abseiling", 1: "air drumming", 2: "zumba"}  # BOM, CRLF, blank lines, names with spaces
    assert load_label_names(labels(tmp_path, "abseiling\nair drumming\nzumba\n"), 3) == {
        0: "abseiling", 1: "air drumming", 2: "zumba"}  # one name per line: numbered from 0
    assert load_label_names(labels(tmp_path, "2 c\n0 a\n1 b\n"), 3) == {0: "a", 1: "b", 2: "c"}  # any order
    with Warnings() as seen:
        # UCF-101's classInd.txt numbers from 1: read as id - 1 (as build_lists.py labels the clips), one warning
        ucf = labels(tmp_path, "1 ApplyEyeMakeup\n2 ApplyLipstick\n3 Archery\n", "classInd.txt")
        assert load_label_names(ucf, 3) == {0: "ApplyEyeMakeup", 1: "ApplyLipstick", 2: "Archery"}
    assert len(seen.lines) == 1 and "classInd.txt" in seen.lines[0] and "read as class ids 0..2" in seen.lines[0]
    with pytest.raises(InputError, match="has 3 class names but the model has 4"):  # 1..3 for 4 classes: no shift
        load_label_names(ucf, 4)


def test_a_list_the_config_names_is_checked_too_and_falls_back_to_ids(tiny_cfg, tmp_path):
    tiny_cfg["INFERENCE"]["label_file"] = labels(tmp_path, "0 a\n1 b\n")  # 2 names, the model has 10 classes
    with Warnings() as seen:
        assert read_label_names(tiny_cfg, instead="class ids are shown") is None
    assert len(seen.lines) == 1, seen.lines
    assert "(INFERENCE.label_file) has 2 class names but the model has 10 classes" in seen.lines[0]
    assert "class ids are shown" in seen.lines[0]
    with pytest.raises(InputError, match=r"\(--label_file\) has 2 class names"):  # the user's own flag: an error
        read_label_names(tiny_cfg, tiny_cfg["INFERENCE"]["label_file"])


def test_the_tools_refuse_a_binary_label_file_in_one_line(tmp_path):
    """Before: visualize_attention.py said "unexpected UnicodeDecodeError (a bug)"; predict.py named neither the
    file nor the flag. Both now stop before loading a model."""
    from paddlevideo.loader.demo_data import make_demo_dataset

    make_demo_dataset(str(tmp_path / "demo"), num_train=0, num_val=1, seed=0)
    video = tmp_path / "demo" / "val" / "000000.avi"
    binary = labels(tmp_path, bytes(range(256)) * 4, "labels.bin")
    config = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"
    runs = {
        "visualize_attention.py": ["tools/visualize_attention.py", "-c", config, "-w", tmp_path / "none.pdparams",
                                   "-i", video, "-o", tmp_path / "vis", "--label_file", binary],
        "predict.py": ["tools/predict.py", "-c", config, "-i", video, "--model_file", tmp_path / "none.pdmodel",
                       "--label_file", binary],
    }
    for prog, (tool, *args) in runs.items():
        done = subprocess.run([sys.executable, str(REPO / tool), *map(str, args)], capture_output=True, text=True,
                              cwd=REPO, timeout=300)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1] == (
            f"{prog}: error: label file '{binary}' (--label_file) is a binary file (NUL bytes), not a text list of "
            "'id name' lines")
