"""The TimeSformer recognizer: backbone + head, with multi-view averaging at test time."""

from typing import Optional, Union

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..builder import build_backbone, build_head
from ..registry import RECOGNIZERS

AVG_TYPES = ("score", "prob")
MODES = ("train", "valid", "test", "infer")


@RECOGNIZERS.register()
class RecognizerTransformer(nn.Layer):
    """Clip recognizer. Attributes ``backbone`` and ``head`` give the state-dict prefixes.

    Args:
        backbone, head: built layers or their configs (``name`` + arguments).
        runtime_cfg: ``{'test': {'num_seg': frames per view, 'avg_type': 'score' | 'prob'}}``;
            num_seg defaults to the backbone's, avg_type to ``score``.
    """

    def __init__(self, backbone: Union[nn.Layer, dict], head: Union[nn.Layer, dict],
                 runtime_cfg: Optional[dict] = None):
        super().__init__()
        self.backbone = backbone if isinstance(backbone, nn.Layer) else build_backbone(backbone)
        self.head = head if isinstance(head, nn.Layer) else build_head(head)
        test_cfg = (runtime_cfg or {}).get("test") or {}
        self.num_seg = test_cfg.get("num_seg", self.backbone.num_seg)
        self.avg_type = test_cfg.get("avg_type", "score")
        if self.avg_type not in AVG_TYPES:
            raise ValueError(f"runtime_cfg.test.avg_type '{self.avg_type}' is unknown; use one of {AVG_TYPES}")

    def forward(self, data_batch, mode="infer"):
        """``train``/``valid``: ``[imgs, labels, ...]`` -> ``{'loss', 'top1', 'top5'}``;
        ``test``/``infer``: ``[imgs, ...]`` (or ``imgs``) with imgs ``[N, 3, V*num_seg, H, W]`` ->
        scores ``[N, num_classes]`` averaged over the V views."""
        if mode not in MODES:
            raise ValueError(f"mode '{mode}' is unknown; use one of {', '.join(MODES)}")
        return getattr(self, f"{mode}_step")(data_batch)

    def train_step(self, data_batch):
        """``[imgs, labels]``, or a mixed batch ``[imgs, labels_a, labels_b, lam]`` (the ``MIX`` section)."""
        scores = self.head(self.backbone(data_batch[0]))
        if len(data_batch) == 4:
            return self.head.mix_loss(scores, *data_batch[1:])
        return self.head.loss(scores, data_batch[1])

    def val_step(self, data_batch):
        imgs, labels = data_batch[0], data_batch[1]
        return self.head.loss(self.head(self.backbone(imgs)), labels, valid_mode=True)

    valid_step = val_step

    def test_step(self, data_batch):
        imgs = data_batch if isinstance(data_batch, paddle.Tensor) else data_batch[0]
        clips, num_views = self._views(imgs)
        scores = self.head(self.backbone(clips))
        if self.avg_type == "prob":
            scores = F.softmax(scores, axis=-1)
        return self._average(scores, num_views)

    infer_step = test_step

    def extract_feature(self, imgs):
        """CLS feature of ``[N, 3, V*num_seg, H, W]``, averaged over the V views: ``[N, embed_dim]``."""
        clips, num_views = self._views(imgs)
        return self._average(self.backbone(clips), num_views)

    def _views(self, imgs):
        """``[N, C, V*num_seg, H, W]`` (views back to back on T) -> ``[N*V, C, num_seg, H, W]``, V.

        All views go through the backbone as one batch (larger matrix products than a loop)."""
        _, channels, frames, height, width = imgs.shape
        if frames % self.num_seg:
            raise ValueError(f"input has {frames} frames, not a multiple of runtime_cfg.test.num_seg "
                             f"{self.num_seg}")
        num_views = frames // self.num_seg
        if num_views == 1:
            return imgs, 1
        clips = imgs.reshape([-1, channels, num_views, self.num_seg, height, width]).transpose([0, 2, 1, 3, 4, 5])
        return clips.reshape([-1, channels, self.num_seg, height, width]), num_views

    @staticmethod
    def _average(values, num_views):
        if num_views == 1:
            return values
        return values.reshape([-1, num_views, values.shape[-1]]).mean(axis=1)
