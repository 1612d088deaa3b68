"""Heads (registered in ``HEADS``)."""

from .timesformer_head import TimeSformerHead

__all__ = ["TimeSformerHead"]
