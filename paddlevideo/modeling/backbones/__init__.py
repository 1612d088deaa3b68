"""Backbones (registered in ``BACKBONES``)."""

from .vit import VisionTransformer

__all__ = ["VisionTransformer"]
