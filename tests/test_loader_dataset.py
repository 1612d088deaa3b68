"""VideoDataset and the loaders: list-file errors, broken videos in train and test, batch layout."""

import logging

import numpy as np
import pytest

from engine_helpers import capture_logs  # noqa: F401  (a fixture)
from paddlevideo.loader.builder import build_dataloader, build_dataset, build_pipeline
from paddlevideo.loader.dataset.video import BrokenVideosError
from paddlevideo.loader.demo_data import make_demo_dataset
from paddlevideo.loader.failures import LoaderError
from paddlevideo.common.errors import ConfigError


@pytest.fixture
def bad_list(tmp_path):
    """A list of 6 good demo clips plus one missing file and one truncated video (items 6 and 7)."""
    paths = make_demo_dataset(str(tmp_path), num_train=0, num_val=6, seed=3)
    good = (tmp_path / "val" / "000001.avi").read_bytes()
    (tmp_path / "val" / "truncated.avi").write_bytes(good[: len(good) // 10])
    lines = open(paths["val"]).read() + "val/missing.avi 1\nval/truncated.avi 2\n"
    list_file = tmp_path / "bad.list"
    list_file.write_text(lines)
    return tmp_path, list_file


def demo_pipeline(tiny_cfg, mode):
    """The tiny config's pipeline on 32 px, 8-frame demo clips: the whole clip is the window."""
    cfg = tiny_cfg.PIPELINE[mode]
    cfg.decode.sampling_rate = 4  # window = 4 * 4 / 30 * 30 = 16 frames >= 8
    return build_pipeline(cfg, mode)


def dataset(tiny_cfg, mode, root, list_file):
    cfg = {"format": "VideoDataset", "file_path": str(list_file), "data_prefix": str(root)}
    return build_dataset(cfg, demo_pipeline(tiny_cfg, mode), mode)


def test_train_epoch_survives_broken_videos(tiny_cfg, bad_list, capture_logs):
    root, list_file = bad_list
    np.random.seed(0)
    data = dataset(tiny_cfg, "train", root, list_file)
    loader = build_dataloader(data, batch_size=3, num_workers=0, shuffle=True, drop_last=False, mode="train")
    batches = list(loader)
    # the missing file is left out up front (7 clips); the truncated one's slot is filled by a replacement
    assert len(data) == 7 and sum(batch[0].shape[0] for batch in batches) == 7
    for imgs, labels in batches:
        assert list(imgs.shape[1:]) == [3, 4, 32, 32] and str(imgs.dtype) == "paddle.float32"
        assert labels.shape[1] == 1 and str(labels.dtype) == "paddle.int64"
    text = capture_logs.text
    assert "missing.avi" in text and "truncated.avi" in text


def test_train_gives_up_after_retries(tiny_cfg, tmp_path):
    (tmp_path / "nothing_here.avi").write_bytes(b"")  # exists, cannot be decoded
    (tmp_path / "only_bad.list").write_text("nothing_here.avi 0\n")
    data = dataset(tiny_cfg, "train", tmp_path, tmp_path / "only_bad.list")
    data.num_retries = 2
    with pytest.raises(BrokenVideosError, match="3 videos in a row failed.*nothing_here.avi"):
        data[0]
    # through a loader the same error reaches the caller as one LoaderError, not a hang or a traceback
    with pytest.raises(LoaderError, match="3 videos in a row failed.*nothing_here.avi"):
        list(build_dataloader(data, batch_size=1, num_workers=0))


def test_test_mode_reports_and_excludes_broken_videos(tiny_cfg, bad_list, capture_logs):
    root, list_file = bad_list
    data = dataset(tiny_cfg, "test", root, list_file)
    seen, empty_batches = [], 0
    for imgs, labels, indices in build_dataloader(data, batch_size=2, num_workers=0, mode="test"):
        if indices.shape[0] == 0:
            empty_batches += 1  # items 6 and 7 share the last batch: all broken
            continue
        assert list(imgs.shape[1:]) == [3, 12, 32, 32]  # 3 views x 4 frames
        assert labels.shape == [indices.shape[0], 1]
        seen += indices.numpy().tolist()
    assert seen == list(range(6)) and empty_batches == 1
    errors = [r.getMessage() for r in capture_logs.records if r.levelno >= logging.ERROR]
    assert any("missing.avi" in m for m in errors) and any("truncated.avi" in m for m in errors)


def test_test_loader_with_workers_keeps_labels_with_indices(tiny_cfg, bad_list):
    root, list_file = bad_list
    data = dataset(tiny_cfg, "test", root, list_file)
    expected = {i: item["labels"] for i, item in enumerate(data.info)}
    got = {}
    for imgs, labels, indices in build_dataloader(data, batch_size=3, num_workers=2, mode="test"):
        for label, index in zip(labels.numpy()[:, 0].tolist(), indices.numpy().tolist()):
            got[index] = label
    assert got == {i: expected[i] for i in range(6)}


def test_list_file_errors(tiny_cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.list"):
        dataset(tiny_cfg, "train", tmp_path, tmp_path / "nope.list")
    (tmp_path / "empty.list").write_text("\n\n")
    with pytest.raises(ValueError, match="empty.list' is empty"):
        dataset(tiny_cfg, "train", tmp_path, tmp_path / "empty.list")
    (tmp_path / "bad.list").write_text("a.avi 1\nb.avi x\n")
    with pytest.raises(ValueError, match="bad.list:2"):
        dataset(tiny_cfg, "valid", tmp_path, tmp_path / "bad.list")
    with pytest.raises(ConfigError, match="format"):
        build_dataset({"file_path": "x"}, None, "train")
