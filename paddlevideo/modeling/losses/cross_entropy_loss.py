"""Cross-entropy on logits with optional label smoothing."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ...common.rules import Positive
from ..registry import LOSSES


@LOSSES.register()
class CrossEntropyLoss(nn.Layer):
    """Mean cross-entropy of logits ``[N, K]`` against class ids ``[N]`` or ``[N, 1]`` (int64).

    Args:
        loss_weight: factor applied to the loss.
    ``forward(..., ls_eps=e)`` smooths the one-hot target to ``(1 - e) * onehot + e / K``.
    """

    def __init__(self, loss_weight: Positive = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, scores, labels, ls_eps=0.0):
        labels = labels.reshape([-1])
        if ls_eps:
            target = F.label_smooth(F.one_hot(labels, scores.shape[-1]), epsilon=ls_eps)
            loss = F.cross_entropy(scores, target, soft_label=True)
        else:
            loss = F.cross_entropy(scores, labels)
        return self.loss_weight * paddle.mean(loss)
