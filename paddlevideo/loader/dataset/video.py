"""``VideoDataset``: videos listed in a ``relative/path label`` file, run through a pipeline."""

import os

import numpy as np
import paddle

from ...utils.logger import get_logger
from ..list_files import read_list_file
from ..registry import DATASETS

MODES = ("train", "valid", "test")


@DATASETS.register()
class VideoDataset(paddle.io.Dataset):
    """Videos from ``file_path`` (joined to ``data_prefix``), each turned into a clip by ``pipeline``.

    Items: train / valid ``(imgs, label)`` with imgs float32 ``[3, T, H, W]`` and label int64 ``[1]``; test
    ``(imgs, label, index)`` with imgs ``[3, views*T, H, W]`` and index an int64 scalar. A video that cannot be
    opened or decoded is logged by name; train / valid then draw another random index (up to ``num_retries``
    times, then raise), test returns ``None`` (``test_collate`` drops it, the caller reports missing indices).

    Args:
        file_path: list file, ``relative/path label_id`` per line.
        pipeline: callable on ``{'filename': path}`` (``builder.build_pipeline``).
        data_prefix: folder the list paths are relative to.
        num_retries: train / valid replacement draws before giving up.
        mode: ``train``, ``valid`` or ``test``.
    """

    def __init__(self, file_path, pipeline, data_prefix="", num_retries=5, mode="train"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"VideoDataset: mode must be one of {', '.join(MODES)}, got '{mode}'")
        self.file_path = file_path
        self.data_prefix = data_prefix or ""
        self.pipeline = pipeline
        self.num_retries = num_retries
        self.mode = mode
        self.info = read_list_file(file_path, self.data_prefix)

    def __len__(self):
        return len(self.info)

    def _prepare(self, index):
        item = self.info[index]
        results = self.pipeline({"filename": item["filename"]})
        return results["imgs"], np.array([item["labels"]], dtype=np.int64)

    def __getitem__(self, index):
        logger = get_logger("loader")
        if self.mode == "test":
            try:
                imgs, label = self._prepare(index)
            except Exception as err:  # any failure of one video must not stop the evaluation
                logger.error("skipping broken video %s (test item %d): %s", self.info[index]["filename"], index,
                             _describe(err))
                return None
            return imgs, label, np.array(index, dtype=np.int64)
        failed = []
        for _ in range(self.num_retries + 1):
            try:
                return self._prepare(index)
            except Exception as err:
                name = self.info[index]["filename"]
                failed.append(name)
                logger.warning("cannot read video %s (%s); drawing another sample", name, _describe(err))
                index = np.random.randint(len(self.info))
        raise RuntimeError(f"{self.mode}: {len(failed)} videos in a row failed to load (last: {failed[-1]}); "
                           f"check the files listed in {self.file_path}")


def _describe(err):
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
