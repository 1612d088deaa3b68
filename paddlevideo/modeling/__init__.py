"""The TimeSformer model: registries, builders, layers, weight loading and the inference form.

Importing this package registers every backbone, head, loss and framework.
"""

from . import backbones, framework, heads, losses  # noqa: F401  (registration)
from .builder import build_backbone, build_head, build_loss, build_model, build_recognizer
from .inference import prepare_for_inference
from .registry import BACKBONES, HEADS, LOSSES, RECOGNIZERS
from .weights import CheckpointError, load_checkpoint, load_pretrained_vit

__all__ = [
    "BACKBONES",
    "HEADS",
    "LOSSES",
    "RECOGNIZERS",
    "CheckpointError",
    "build_backbone",
    "build_head",
    "build_loss",
    "build_model",
    "build_recognizer",
    "load_checkpoint",
    "load_pretrained_vit",
    "prepare_for_inference",
]
