"""Heads (registered in ``HEADS``)."""

from .pptimesformer_head import ppTimeSformerHead
from .timesformer_head import TimeSformerHead

__all__ = ["TimeSformerHead", "ppTimeSformerHead"]
