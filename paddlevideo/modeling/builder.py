"""Build model parts from configs: each config names its class with ``name`` (``framework`` for the model)."""

from ..runtime import configure_cpu_once
from ..utils.registry import build_from_config
from .registry import BACKBONES, HEADS, LOSSES, RECOGNIZERS


def build_backbone(cfg):
    """``MODEL.backbone`` -> backbone layer (e.g. ``VisionTransformer``); the first model built in a process
    applies the CPU set-up first (``runtime.configure_cpu_once``; ``PADDLEVIDEO_CONFIGURE_CPU=0``: not)."""
    configure_cpu_once()
    return build_from_config(cfg, BACKBONES)


def build_head(cfg):
    """``MODEL.head`` -> head layer (e.g. ``TimeSformerHead``)."""
    return build_from_config(cfg, HEADS)


def build_loss(cfg):
    """A loss config (e.g. ``{'name': 'CrossEntropyLoss'}``) -> loss layer."""
    return build_from_config(cfg, LOSSES)


def build_recognizer(cfg):
    """``MODEL`` (``framework``, ``backbone``, ``head``, ``runtime_cfg``) -> recognizer layer."""
    return build_from_config(cfg, RECOGNIZERS, key="framework")


def build_model(cfg):
    """``cfg.MODEL`` -> the full model; unknown names raise an error listing the known ones. The first model
    built in a process applies the CPU set-up first (see :func:`build_backbone`)."""
    configure_cpu_once()
    return build_recognizer(cfg)


def build_model_with_weights(cfg, weights, **backbone_overrides):
    """``cfg.MODEL`` + a full checkpoint -> the model with every weight from ``weights``, in eval mode.

    The image-ViT ``pretrained`` init is skipped (the checkpoint replaces every weight, and its file
    need not exist on a test or deployment machine); ``backbone_overrides`` set other backbone keys
    (e.g. ``attention_impl="plain"`` for export). ``weights=None`` keeps the random init.
    """
    import copy

    from .weights import load_checkpoint

    model_cfg = copy.deepcopy(cfg)
    model_cfg["backbone"]["pretrained"] = ""
    model_cfg["backbone"].update(backbone_overrides)
    model = build_model(model_cfg)
    if weights is not None:
        load_checkpoint(model, weights)
    model.eval()
    return model
