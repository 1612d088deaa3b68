"""Build model parts from configs: each config names its class with ``name`` (``framework`` for the model)."""

from ..runtime import configure_cpu_once
from ..common.registry import build_from_config
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


def build_model(cfg, trust_pickle=False):
    """``cfg.MODEL`` -> the full model; unknown names raise an error listing the known ones. The first model
    built in a process applies the CPU set-up first (see :func:`build_backbone`). ``trust_pickle``: read
    ``backbone.pretrained`` with full unpickling (``--trust-pickle``); a config cannot set it."""
    configure_cpu_once()
    if trust_pickle:
        import copy

        cfg = copy.deepcopy(cfg)
        cfg["backbone"]["trust_pickle"] = True  # an engine argument: the schema refuses it in config files
    return build_recognizer(cfg)


def build_model_with_weights(cfg, weights, trust_pickle=False, **backbone_overrides):
    """``cfg.MODEL`` + a full checkpoint -> the model with every weight from ``weights``, in eval mode.

    The image-ViT ``pretrained`` init is skipped (the checkpoint replaces every weight, and its file
    need not exist on a test or deployment machine); ``backbone_overrides`` set other backbone keys
    (e.g. ``attention_impl="plain"`` for export). ``weights=None`` keeps the random init. ``weights`` is read
    by ``utils.save_load.load``: plain data only, unless ``trust_pickle`` (``--trust-pickle``).
    """
    import copy

    from .weights import load_checkpoint

    model_cfg = copy.deepcopy(cfg)
    model_cfg["backbone"]["pretrained"] = ""
    model_cfg["backbone"].update(backbone_overrides)
    model = build_model(model_cfg)
    if weights is not None:
        load_checkpoint(model, weights, trust_pickle=trust_pickle)
    model.eval()
    return model
