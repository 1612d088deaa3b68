"""Build the train / valid / test loaders of a config (the one place the engine meets the data package)."""

from ..config import require
from ..common import dist

PURPOSE = {"train": "training", "valid": "--validate", "test": "--test"}
BATCH_SIZE = {"train": "batch_size", "valid": "valid_batch_size", "test": "test_batch_size"}


def build_loader(cfg, mode):
    """Return ``(loader, dataset)`` for ``mode`` in ``train|valid|test``.

    Train shuffles and drops the last incomplete batch, and mixes each batch when the config has a ``MIX``
    section (``loader.mix.VideoMix``); valid and test keep every clip. Train always
    uses ``DistributedBatchSampler`` (a world of one included): its shuffle depends only on the epoch
    number the trainer sets, and N processes see exactly the batches one process would see with
    N-fold gradient accumulation. Valid / test use it only under a multi-process run.

    The dataset checks its list before anything runs: labels against ``MODEL.head.num_classes``, missing
    videos; and every clip against the pipeline's output shape, with a frame size the pipeline leaves open
    (no crop) taken from the model's ``MODEL.backbone.img_size``.
    """
    from ..loader.builder import build_dataloader, build_dataset, build_pipeline
    from ..loader.mix import build_mix

    require(cfg, (f"DATASET.{mode}", f"PIPELINE.{mode}", "MODEL"), PURPOSE[mode])
    size_key = BATCH_SIZE[mode] if BATCH_SIZE[mode] in cfg.DATASET else "batch_size"  # the one it follows
    require(cfg, (f"DATASET.{size_key}",), PURPOSE[mode])
    pipeline = build_pipeline(cfg.PIPELINE[mode], section=f"PIPELINE.{mode}")
    dataset = build_dataset(cfg.DATASET[mode], pipeline, mode, num_classes=_num_classes(cfg),
                            expected_shape=expected_shape(cfg, pipeline))
    loader = build_dataloader(dataset, batch_size=int(cfg.DATASET[size_key]), num_workers=int(cfg.DATASET.num_workers),
                              shuffle=mode == "train", drop_last=mode == "train", mode=mode,
                              distributed=True if mode == "train" else dist.get_world_size() > 1,
                              mix=build_mix(cfg.get("MIX")) if mode == "train" else None)
    return loader, dataset


def _num_classes(cfg):
    head = (cfg.get("MODEL") or {}).get("head") or {}
    return head.get("num_classes")


def expected_shape(cfg, pipeline):
    """The pipeline's output shape, its open frame size filled in with the model's input size."""
    size = ((cfg.get("MODEL") or {}).get("backbone") or {}).get("img_size")
    spec = pipeline.spec
    if size is not None:
        spec = spec.replace(height=spec.height or int(size), width=spec.width or int(size))
    return spec.shape()


def clip_name(dataset, index):
    """The file name of clip ``index`` for error reports (falls back to the index)."""
    for attr in ("info", "samples", "items"):
        items = getattr(dataset, attr, None)
        if items is not None and index < len(items):
            item = items[index]
            return str(item.get("filename", item) if isinstance(item, dict) else item[0] if isinstance(item, (list, tuple)) else item)
    return f"#{index}"
