"""``VideoDataset``: videos listed in a ``relative/path label`` file, run through a pipeline."""

from typing import Optional

import numpy as np
import paddle

from ...common.errors import InputError
from ...common.logger import get_logger
from ...common.rules import NonEmptyStr, NonNegativeInt
from ..failures import describe
from ..list_files import ListFileError, check_labels, missing_files, read_list_file
from ..registry import DATASETS

MODES = ("train", "valid", "test")
SHOW_NAMES = 5  # missing / skipped files named in one log line


class BrokenVideosError(InputError, RuntimeError):
    """Training drew ``num_retries + 1`` unreadable videos in a row."""


class ClipShapeError(ValueError):
    """The pipeline made a clip of another shape than the others (e.g. an odd frame size with no crop)."""


@DATASETS.register()
class VideoDataset(paddle.io.Dataset):
    """Videos from ``file_path`` (joined to ``data_prefix``), each turned into a clip by ``pipeline``.

    Items: train / valid ``(imgs, label)`` with imgs float32 ``[3, T, H, W]`` and label int64 ``[1]``; test
    ``(imgs, label, index)`` with imgs ``[3, views*T, H, W]`` and index an int64 scalar.

    Checked when built, before any video is read: every list line (see ``list_files.read_list_file``); every
    label in ``[0, num_classes)`` when ``num_classes`` is given; which listed videos exist. Missing videos are
    counted and the first few named in a warning; train / valid leave them out, test keeps them so they are
    counted as skipped; a list where no video exists is an error.

    A clip that cannot be decoded or transformed, or whose shape differs from ``expected_shape``, is skipped
    and named: train / valid draw another random index instead (up to ``num_retries`` times in a row, then
    :class:`BrokenVideosError`), test returns ``None`` (``test_collate`` drops it, the metric counts it). So
    every clip that reaches batch assembly has the same shape.

    Args:
        file_path: list file, ``relative/path label_id`` per line.
        pipeline: callable on ``{'filename': path}`` (``builder.build_pipeline``).
        data_prefix: folder the list paths are relative to.
        suffix: appended to every listed path (PaddleVideo's key: ``'.avi'`` for lists written without
            extensions); each video is ``data_prefix / (path + suffix)``.
        num_retries: train / valid replacement draws before giving up.
        mode: ``train``, ``valid`` or ``test``.
        num_classes: the model's class count (``MODEL.head.num_classes``); None skips the label check.
        expected_shape: the shape of every clip (``None`` entries: any size); default the pipeline's
            ``output_shape()``. Sizes still unknown are fixed by the first clip this process makes.
    """

    def __init__(self, file_path: NonEmptyStr, pipeline, data_prefix: Optional[str] = "",
                 num_retries: NonNegativeInt = 5, mode="train", num_classes=None, expected_shape=None,
                 suffix: Optional[str] = ""):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"VideoDataset: mode must be one of {', '.join(MODES)}, got '{mode}'")
        self.file_path = file_path
        self.data_prefix = data_prefix or ""
        self.pipeline = pipeline
        self.num_retries = num_retries
        self.mode = mode
        self.suffix = suffix or ""
        items = read_list_file(file_path, self.data_prefix, self.suffix)
        if num_classes is not None:
            check_labels(items, int(num_classes), file_path)
        self.info = self._existing(items)
        if expected_shape is None and hasattr(pipeline, "output_shape"):
            expected_shape = pipeline.output_shape()
        self.expected_shape = tuple(expected_shape) if expected_shape is not None else None

    def _existing(self, items):
        missing = missing_files(items)
        if not missing:
            return items
        first = missing[0]
        if len(missing) == len(items):
            raise ListFileError(f"none of the {len(items)} videos listed in {self.file_path} exists (first: "
                                f"line {first['line']}: '{first['filename']}'); check DATASET.{self.mode}.data_prefix "
                                "and the paths in the list")
        names = ", ".join(item["filename"] for item in missing[:SHOW_NAMES])
        more = f" and {len(missing) - SHOW_NAMES} more" if len(missing) > SHOW_NAMES else ""
        action = "they will be counted as skipped" if self.mode == "test" else "they are left out"
        get_logger("loader").warning("%d of the %d videos listed in %s are missing (%s%s); %s", len(missing),
                                     len(items), self.file_path, names, more, action)
        if self.mode == "test":
            return items
        gone = {id(item) for item in missing}
        return [item for item in items if id(item) not in gone]

    def __len__(self):
        return len(self.info)

    def _prepare(self, index):
        item = self.info[index]
        imgs = self.pipeline({"filename": item["filename"]})["imgs"]
        self._check_shape(np.shape(imgs))
        return imgs, np.array([item["labels"]], dtype=np.int64)

    def _check_shape(self, shape):
        expected = self.expected_shape
        if expected is None:
            return
        if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
            raise ClipShapeError(f"the pipeline made a clip of shape {list(shape)}, not the expected "
                                 f"{[e if e is not None else '*' for e in expected]}")
        if None in expected:
            self.expected_shape = tuple(shape)

    def __getitem__(self, index):
        if self.mode == "test":
            try:
                imgs, label = self._prepare(index)
            except Exception as err:  # any failure of one video must not stop the evaluation
                get_logger("loader").error("skipping broken video %s (test item %d): %s",
                                           self.info[index]["filename"], index, describe(err))
                return None
            return imgs, label, np.array(index, dtype=np.int64)
        failed = []
        for _ in range(self.num_retries + 1):
            try:
                return self._prepare(index)
            except Exception as err:
                name = self.info[index]["filename"]
                failed.append(name)
                get_logger("loader").warning("skipping video %s (%s); drawing another sample", name, describe(err))
                index = np.random.randint(len(self.info))
        raise BrokenVideosError(f"{self.mode}: {len(failed)} videos in a row failed to load (last: {failed[-1]}); "
                                f"check the files listed in {self.file_path}")
