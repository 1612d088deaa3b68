"""TimeSformer's classification head: one Linear on the CLS feature, plus loss and top-k accuracy."""

from typing import Optional

import paddle
import paddle.nn as nn
from paddle.nn.initializer import Constant, TruncatedNormal

from ...common.registry import build_from_config
from ...common.rules import Fraction, Positive, PositiveInt
from ..registry import HEADS, LOSSES


@HEADS.register()
class TimeSformerHead(nn.Layer):
    """CLS feature ``[N, in_channels]`` -> logits ``[N, num_classes]`` (no dropout, no softmax).

    Args:
        num_classes: number of classes.
        in_channels: feature size (the backbone's ``embed_dim``).
        std: std of the truncated-normal init of ``fc.weight`` (bias starts at 0).
        ls_eps: label smoothing applied to the training loss (not in valid mode).
        loss_cfg: the loss config (``name`` from the LOSSES registry).
    """

    def __init__(self, num_classes: PositiveInt, in_channels: PositiveInt, std: Positive = 0.02, ls_eps: Fraction = 0.0,
                 loss_cfg: Optional[dict] = None):
        super().__init__()
        self.num_classes = num_classes
        self.ls_eps = ls_eps
        self.fc = nn.Linear(in_channels, num_classes)
        TruncatedNormal(std=std)(self.fc.weight)
        Constant(0.0)(self.fc.bias)
        self.loss_func = build_from_config(loss_cfg or {"name": "CrossEntropyLoss"}, LOSSES)

    def forward(self, x):
        return self.fc(x)

    def loss(self, scores, labels, valid_mode=False):
        """Loss and accuracy of logits ``[N, K]`` for int64 labels ``[N]`` or ``[N, 1]``.

        Returns ``{'loss', 'top1', 'top5'}`` (scalar tensors); top-5 is top-``min(5, K)``.
        """
        labels = labels.reshape([-1, 1]).astype("int64")
        ls_eps = 0.0 if valid_mode else self.ls_eps
        return {
            "loss": self.loss_func(scores, labels, ls_eps=ls_eps),
            "top1": paddle.metric.accuracy(scores, labels, k=1),
            "top5": paddle.metric.accuracy(scores, labels, k=min(5, scores.shape[-1])),
        }

    def mix_loss(self, scores, labels_a, labels_b, lam):
        """Loss and accuracy of logits ``[N, K]`` on a mixed batch (``loader.mix.VideoMix``): each clip is
        ``lam`` parts of the clip labelled ``labels_a`` and ``1 - lam`` of the one labelled ``labels_b``
        (int64 ``[N]`` or ``[N, 1]``; ``lam`` a float ``[N]`` of one value, or a scalar).

        Returns ``{'loss', 'top1', 'top5'}``: ``lam * L(a) + (1 - lam) * L(b)`` with the training label
        smoothing ``ls_eps``, and top-k weighted the same way, as PaddleVideo reports them.
        """
        lam = lam.reshape([-1])[0].astype("float32") if isinstance(lam, paddle.Tensor) else float(lam)
        part_a, part_b = self.loss(scores, labels_a), self.loss(scores, labels_b)
        return {key: lam * part_a[key].astype("float32") + (1.0 - lam) * part_b[key].astype("float32")
                for key in ("loss", "top1", "top5")}
