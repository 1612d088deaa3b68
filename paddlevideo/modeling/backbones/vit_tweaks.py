"""PP-TimeSformer's backbone, ``VisionTransformer_tweaks`` (PaddleVideo's name): TimeSformer's ViT
(:class:`.vit.VisionTransformer`, the same layers, parameters and numbers) whose ``cls_token``, ``pos_embed`` and
``time_embed`` take no weight decay.

PaddleVideo's class also takes ``wd_bias`` and ``lr_mult_list`` and passes them down to layers that never read
them; here they are accepted, checked and likewise not applied, and a value that asks for something
(``wd_bias: False``, a multiplier other than 1) says so in one warning instead of being dropped silently.
"""

from ...common.logger import get_logger
from ...common.rules import ListOf, Positive
from ..registry import BACKBONES
from ..weight_decay import mark_no_weight_decay
from .vit import VisionTransformer

NO_WEIGHT_DECAY = ("cls_token", "pos_embed", "time_embed")
DEFAULT_LR_MULT_LIST = (1.0, 1.0, 1.0, 1.0, 1.0)


@BACKBONES.register()
class VisionTransformer_tweaks(VisionTransformer):  # noqa: N801 - PaddleVideo's name, as configs spell it
    """:class:`.vit.VisionTransformer` with ``cls_token``, ``pos_embed`` and ``time_embed`` exempt from the
    optimizer's L2 weight decay (:mod:`..weight_decay`). Clip ``[B, C, T, H, W]`` -> CLS feature ``[B, embed_dim]``.

    Args:
        wd_bias: accepted as PaddleVideo's config passes it; not applied (biases take the optimizer's decay, as in
            PaddleVideo, which never reads it); ``False`` logs a warning saying so.
        lr_mult_list: accepted as PaddleVideo's config passes it (5 positive numbers: patch embedding, then blocks
            by fours); not applied (every parameter trains at the optimizer's learning rate, as in PaddleVideo,
            which never reads it); a value other than 1 logs a warning saying so.
        **kwargs: every key of :class:`.vit.VisionTransformer`, with its defaults.
    """

    def __init__(self, wd_bias: bool = True, lr_mult_list: ListOf(Positive) = DEFAULT_LR_MULT_LIST, **kwargs):
        super().__init__(**kwargs)
        self.wd_bias, self.lr_mult_list = bool(wd_bias), [float(m) for m in lr_mult_list]
        if any(m <= 0 for m in self.lr_mult_list):
            raise ValueError(f"lr_mult_list must hold positive numbers, got {list(lr_mult_list)}")
        if not self.wd_bias:
            get_logger().warning("MODEL.backbone.wd_bias False is not applied: biases keep the optimizer's weight "
                                 "decay (PaddleVideo accepts wd_bias and applies it nowhere either)")
        if any(m != 1.0 for m in self.lr_mult_list):
            get_logger().warning("MODEL.backbone.lr_mult_list %s is not applied: every parameter trains at the "
                                 "optimizer's learning rate (PaddleVideo accepts lr_mult_list and applies it "
                                 "nowhere either)", self.lr_mult_list)
        for name in NO_WEIGHT_DECAY:
            if getattr(self, name, None) is not None:  # space_only has no time_embed
                mark_no_weight_decay(getattr(self, name))
