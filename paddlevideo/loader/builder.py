"""Build pipelines, datasets and data loaders from config sections (``PIPELINE.<mode>``, ``DATASET.<mode>``)."""

import numpy as np

from ..common import dist
from ..common.errors import ConfigError
from ..common.logger import get_logger
from .failures import GuardedDataset, GuardedLoader, guarded_collate
from .pipelines import Compose
from .registry import DATASETS


def build_pipeline(pipeline_cfg, section="pipeline"):
    """``PIPELINE.train|valid|test`` -> callable on ``{'filename': path}`` whose ``['imgs']`` is float32
    ``[3, T * views, H, W]``. ``section`` only names the config section in error messages. The operators'
    declared keys are checked here, so a misordered pipeline fails before any video is read."""
    return Compose(pipeline_cfg, section)


def build_dataset(dataset_cfg, pipeline, mode, **extra):
    """``DATASET.train|valid|test`` (``format``, ``file_path``, ``data_prefix``, ...) -> dataset in ``mode``.

    ``extra`` goes to the dataset too (``num_classes``, ``expected_shape`` from the engine). The list file is
    read and checked here, so a missing, empty or malformed list fails before any other work.
    """
    from . import dataset  # noqa: F401  (registers the datasets)

    cfg = dict(dataset_cfg or {})
    if "format" not in cfg:
        raise ConfigError(f"DATASET.{mode} needs 'format' (e.g. format: VideoDataset), got {cfg}")
    cls = DATASETS.get(cfg.pop("format"))
    try:
        return cls(pipeline=pipeline, mode=mode, **cfg, **extra)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise ConfigError(f"DATASET.{mode}: {err}; check the config keys") from None
        raise


def train_collate(batch):
    """``[(imgs, label)]`` -> ``[imgs [B, 3, T, H, W], labels [B, 1]]``."""
    return [np.stack(column) for column in zip(*batch)]


def test_collate(batch):
    """Drops ``None`` (broken videos); ``[(imgs, label, index)]`` -> ``[imgs [B,3,T,H,W], labels [B,1], indices [B]]``.

    ``B`` can be 0 when every video of the batch was broken: the arrays are then empty (imgs ``[0]``) and the
    caller skips the batch.
    """
    kept = [item for item in batch if item is not None]
    if not kept:
        return [np.zeros((0,), np.float32), np.zeros((0, 1), np.int64), np.zeros((0,), np.int64)]
    return [np.stack(column) for column in zip(*kept)]


def mixed_collate(mix):
    """``train_collate`` followed by the batch operator ``mix`` (``loader.mix.VideoMix``):
    ``[(imgs, label)]`` -> ``[imgs, labels_a [B, 1], labels_b [B, 1], lam [B]]``."""

    def collate(batch):
        return mix(train_collate(batch))

    collate.__doc__ = mixed_collate.__doc__
    return collate


def build_dataloader(dataset, batch_size, num_workers=0, shuffle=False, drop_last=False, mode="train",
                     distributed=None, mix=None):
    """A :class:`~paddlevideo.loader.failures.GuardedLoader` over ``dataset`` with ``num_workers`` worker processes.

    A failure inside the dataset or the batch assembly ends the iteration with a one-line ``LoaderError`` in
    the main thread, never a hang (see ``loader/failures.py``).

    Args:
        batch_size: clips per batch (per process).
        num_workers: loader worker processes; 0 loads in a thread of the calling process.
        shuffle: reshuffle every epoch (train).
        drop_last: drop the last incomplete batch.
        mode: ``test`` uses ``test_collate`` (drops broken videos), others stack ``(imgs, label)``.
        distributed: use ``paddle.io.DistributedBatchSampler`` (each rank gets its share); default: when the
            run has more than one process (``utils.dist.get_world_size``).
        mix: a batch operator applied after stacking (train only; the ``MIX`` section, ``loader.mix``). It runs
            inside the guarded collate, so its failure ends the run with one line like any loader failure.
    """
    import paddle

    if distributed is None:
        distributed = dist.get_world_size() > 1
    if distributed and mode == "train":
        sampler = paddle.io.DistributedBatchSampler(dataset, batch_size=batch_size, shuffle=shuffle,
                                                    drop_last=drop_last)
    elif distributed:
        # Paddle's DistributedBatchSampler pads the dataset to a multiple of the world size by repeating
        # clips, which would count them twice in a validation metric: evaluation shards without padding.
        sampler = paddle.io.BatchSampler(sampler=_EvalShard(len(dataset), dist.get_rank(), dist.get_world_size()),
                                         batch_size=batch_size, drop_last=drop_last)
    else:
        sampler = paddle.io.BatchSampler(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    get_logger("loader").debug("%s loader: %d videos, batch %d, %d workers%s", mode, len(dataset), batch_size,
                               num_workers, ", distributed" if distributed else "")
    test = mode == "test"
    # Paddle's shared-memory transfer cannot carry the zero-size arrays of an all-broken test batch, so test
    # batches travel pickled (slower, but evaluation is bound by the model, not by this copy).
    loader = paddle.io.DataLoader(GuardedDataset(dataset), batch_sampler=sampler, num_workers=num_workers,
                                  collate_fn=guarded_collate(test_collate if test else
                                                             mixed_collate(mix) if mix else train_collate),
                                  return_list=True, use_shared_memory=not test,
                                  worker_init_fn=_quiet_worker if num_workers else None)
    return GuardedLoader(loader)


class _EvalShard:
    """Indices ``rank, rank + world, ...`` of ``[0, size)``: every clip on exactly one process, no padding
    (shards differ in length by at most one clip; metrics weight by clip count)."""

    def __init__(self, size, rank, world):
        self.indices = list(range(rank, size, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def _quiet_worker(worker_id):
    """A loader worker's start: Ctrl-C is left to the main process (:func:`paddlevideo.runtime.ignore_sigint`)."""
    from ..runtime import ignore_sigint

    ignore_sigint()
