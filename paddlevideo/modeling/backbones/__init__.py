"""Backbones (registered in ``BACKBONES``)."""

from .vit import VisionTransformer
from .vit_tweaks import VisionTransformer_tweaks

__all__ = ["VisionTransformer", "VisionTransformer_tweaks"]
