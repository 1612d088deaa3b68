"""``paddlevideo.common.files``: the one temp + rename primitive behind every whole-or-nothing write (tools,
checkpoints, pictures), its temporary names and modes, and the wording of a failed write."""

import errno
import os
import stat

import pytest

from paddlevideo.common.errors import OutputError
from paddlevideo.common.files import atomic_file, current_umask, is_leftover_tmp, write_atomically


@pytest.mark.parametrize("keep_extension", [False, True])
def test_a_finished_write_replaces_the_file_with_the_usual_mode(tmp_path, keep_extension):
    target = tmp_path / "out.png"
    target.write_text("old")
    with atomic_file(target, keep_extension=keep_extension) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and is_leftover_tmp(os.path.basename(tmp))
        assert tmp.endswith(".png") == keep_extension  # writers that pick the format by the extension get it
        with open(tmp, "w") as handle:
            handle.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["out.png"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current_umask()


@pytest.mark.parametrize("keep_extension", [False, True])
def test_an_interrupted_write_leaves_the_earlier_file_and_no_temporary_one(tmp_path, keep_extension):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target, keep_extension=keep_extension) as tmp:
            with open(tmp, "w") as handle:
                handle.write("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.csv"]


def test_a_failed_write_names_the_file_and_what_to_do(tmp_path):
    def full_disk(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match=r"cannot write '.*x\.txt' \(no space left on the device\); free some "
                                          "space .*; any earlier file of that name is left as it was"):
        write_atomically(str(tmp_path / "x.txt"), full_disk)
    assert os.listdir(tmp_path) == []
    folder = tmp_path / "made" / "here"
    assert write_atomically(str(folder / "y.txt"), lambda tmp: open(tmp, "w").close(), make_folder=True, sync=True)
    assert os.listdir(folder) == ["y.txt"]
