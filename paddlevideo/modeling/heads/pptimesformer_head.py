"""PP-TimeSformer's head, ``ppTimeSformerHead`` (PaddleVideo's name): the TimeSformer head whose ``fc`` bias
takes no weight decay."""

from ..registry import HEADS
from ..weight_decay import mark_no_weight_decay
from .timesformer_head import TimeSformerHead


@HEADS.register()
class ppTimeSformerHead(TimeSformerHead):  # noqa: N801 - PaddleVideo's name, as configs spell it
    """:class:`.timesformer_head.TimeSformerHead` (same arguments, parameters and numbers) with ``fc.bias``
    exempt from the optimizer's L2 weight decay (:mod:`..weight_decay`); ``fc.weight`` is decayed.
    CLS feature ``[N, in_channels]`` -> logits ``[N, num_classes]``."""

    def __init__(self, **kwargs):  # every key of TimeSformerHead, with its defaults
        super().__init__(**kwargs)
        mark_no_weight_decay(self.fc.bias)
