"""Build pipelines, datasets and data loaders from config sections (``PIPELINE.<mode>``, ``DATASET.<mode>``)."""

import numpy as np

from ..utils.logger import get_logger
from .registry import DATASETS
from .pipelines import Compose


def build_pipeline(pipeline_cfg, section="pipeline"):
    """``PIPELINE.train|valid|test`` -> callable on ``{'filename': path}`` whose ``['imgs']`` is float32
    ``[3, T * views, H, W]``. ``section`` only names the config section in error messages."""
    return Compose(pipeline_cfg, section)


def build_dataset(dataset_cfg, pipeline, mode):
    """``DATASET.train|valid|test`` (``format``, ``file_path``, ``data_prefix``, ...) -> dataset in ``mode``.

    The list file is read here, so a missing or empty list fails before any other work.
    """
    from . import dataset  # noqa: F401  (registers the datasets)

    cfg = dict(dataset_cfg or {})
    if "format" not in cfg:
        raise KeyError(f"DATASET.{mode} needs 'format' (e.g. format: VideoDataset), got {cfg}")
    cls = DATASETS.get(cfg.pop("format"))
    try:
        return cls(pipeline=pipeline, mode=mode, **cfg)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise TypeError(f"DATASET.{mode}: {err}; check the config keys") from None
        raise


def _stack(column):
    return np.stack(column)


def train_collate(batch):
    """``[(imgs, label)]`` -> ``[imgs [B, 3, T, H, W], labels [B, 1]]``."""
    return [_stack(column) for column in zip(*batch)]


def test_collate(batch):
    """Drops ``None`` (broken videos); ``[(imgs, label, index)]`` -> ``[imgs [B,3,T,H,W], labels [B,1], indices [B]]``.

    ``B`` can be 0 when every video of the batch was broken: the arrays are then empty (imgs ``[0]``) and the
    caller skips the batch.
    """
    kept = [item for item in batch if item is not None]
    if not kept:
        return [np.zeros((0,), np.float32), np.zeros((0, 1), np.int64), np.zeros((0,), np.int64)]
    return [_stack(column) for column in zip(*kept)]


def _world_size():
    import paddle.distributed as dist

    try:
        return dist.get_world_size()
    except Exception:  # not initialised: a single process
        return 1


def build_dataloader(dataset, batch_size, num_workers=0, shuffle=False, drop_last=False, mode="train",
                     distributed=None):
    """A ``paddle.io.DataLoader`` over ``dataset`` with ``num_workers`` worker processes.

    Args:
        batch_size: clips per batch (per process).
        num_workers: loader worker processes; 0 loads in the calling process.
        shuffle: reshuffle every epoch (train).
        drop_last: drop the last incomplete batch.
        mode: ``test`` uses ``test_collate`` (drops broken videos), others stack ``(imgs, label)``.
        distributed: use ``paddle.io.DistributedBatchSampler`` (each rank gets its share); default: when
            ``paddle.distributed`` reports more than one process.
    """
    import paddle

    if distributed is None:
        distributed = _world_size() > 1
    if distributed:
        sampler = paddle.io.DistributedBatchSampler(dataset, batch_size=batch_size, shuffle=shuffle,
                                                    drop_last=drop_last)
    else:
        sampler = paddle.io.BatchSampler(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    get_logger("loader").debug("%s loader: %d videos, batch %d, %d workers%s", mode, len(dataset), batch_size,
                               num_workers, ", distributed" if distributed else "")
    test = mode == "test"
    # Paddle's shared-memory transfer cannot carry the zero-size arrays of an all-broken test batch, so test
    # batches travel pickled (slower, but evaluation is bound by the model, not by this copy).
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                                collate_fn=test_collate if test else train_collate, return_list=True,
                                use_shared_memory=not test)
