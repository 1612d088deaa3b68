"""``VideoMix``: mixup or cutmix of a whole training batch (the ``MIX`` section of PP-TimeSformer's config).

A batch ``[imgs [N, C, T, H, W], labels [N, 1]]`` becomes ``[imgs, labels_a [N, 1], labels_b [N, 1], lam [N]]``:
each clip is mixed with clip ``perm[i]`` of the same batch (one random permutation and one ``lam`` per batch),
``labels_b = labels[perm]``, and ``lam`` (the same value in every row) is the share of clip ``i`` in the result.
The head's loss is then ``lam * CE(scores, a) + (1 - lam) * CE(scores, b)`` and top-k is weighted the same way
(``TimeSformerHead.loss``).

- **mixup** (probability ``1 - cutmix_prob``): ``lam ~ Beta(mixup_alpha, mixup_alpha)``,
  ``imgs = lam * imgs + (1 - lam) * imgs[perm]``.
- **cutmix** (probability ``cutmix_prob``): ``lam ~ Beta(cutmix_alpha, cutmix_alpha)``; a box of
  ``int(H * sqrt(1 - lam)) x int(W * sqrt(1 - lam))`` pixels centred at a uniform pixel and clipped to the frame
  is pasted from ``imgs[perm]`` into **every frame** at the same place (a spatial ``H x W`` box through time);
  ``lam`` becomes the share of the frame area kept, ``1 - box area / (H * W)``.

PaddleVideo's cutmix differs, because it is broken: it takes the box sides from axes 2 and 3 of the batch
(``T`` and ``H`` of ``[N, C, T, H, W]``), so it pastes a time x height slab over the full width while computing
``lam`` from ``H x W``, and it calls ``np.int``, which numpy >= 1.24 removed (it raises on every cutmix batch
there). Here the box is spatial and ``lam`` is the area it really leaves.

Random draws use numpy's global generator, like the per-clip augmentations (seeded per epoch and per loader
worker). The mix runs inside the batch assembly (:func:`..builder.build_dataloader`), after the dataset has
replaced any broken video, so a failure here ends the run with one line like any loader failure.
"""

import numpy as np

from ..common.rules import Positive, Probability
from .registry import BATCH_MIXES


def mixup(imgs, labels, lam, perm):
    """``[lam * imgs + (1 - lam) * imgs[perm], labels, labels[perm], lam per row]`` (imgs float32 ``[N, ...]``)."""
    mixed = (lam * imgs + (1.0 - lam) * imgs[perm]).astype(imgs.dtype)
    return [mixed, labels, labels[perm], np.full(len(imgs), lam, np.float32)]


def cutmix_box(height, width, lam, rng=np.random):
    """``(y1, y2, x1, x2)``: a box of side ratio ``sqrt(1 - lam)`` centred at a uniform pixel, clipped to the frame."""
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = rng.randint(height), rng.randint(width)
    y1, y2 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
    x1, x2 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
    return int(y1), int(y2), int(x1), int(x2)


def cutmix(imgs, labels, box, perm):
    """Paste ``box`` (``y1, y2, x1, x2`` on the last two axes, every frame) from ``imgs[perm]``; returns
    ``[imgs, labels, labels[perm], lam per row]`` with ``lam = 1 - box area / (H * W)``."""
    y1, y2, x1, x2 = box
    mixed = imgs.copy()
    mixed[..., y1:y2, x1:x2] = imgs[perm][..., y1:y2, x1:x2]
    height, width = imgs.shape[-2:]
    lam = 1.0 - (y2 - y1) * (x2 - x1) / float(height * width)
    return [mixed, labels, labels[perm], np.full(len(imgs), lam, np.float32)]


@BATCH_MIXES.register()
class VideoMix:
    """Mixup or cutmix of a collated training batch (see the module docstring).

    Args:
        cutmix_prob: probability that a batch is cut-mixed (else mixed up); 0 mixes up every batch.
        mixup_alpha: Beta parameter of mixup's ``lam`` (> 0).
        cutmix_alpha: Beta parameter of cutmix's ``lam`` (> 0).
    """

    def __init__(self, cutmix_prob: Probability = 0.5, mixup_alpha: Positive = 0.2, cutmix_alpha: Positive = 1.0):
        if not 0.0 <= cutmix_prob <= 1.0:
            raise ValueError(f"VideoMix: cutmix_prob must be in [0, 1], got {cutmix_prob}")
        if mixup_alpha <= 0 or cutmix_alpha <= 0:
            raise ValueError(f"VideoMix: mixup_alpha and cutmix_alpha must be > 0, got {mixup_alpha}, {cutmix_alpha}")
        self.cutmix_prob, self.mixup_alpha, self.cutmix_alpha = cutmix_prob, mixup_alpha, cutmix_alpha

    def __call__(self, batch):
        """``[imgs [N, C, T, H, W], labels [N, 1]]`` -> ``[imgs, labels_a, labels_b, lam [N]]``."""
        imgs, labels = batch[0], batch[1]
        perm = np.random.permutation(len(imgs))
        if np.random.random() < self.cutmix_prob:
            lam = np.random.beta(self.cutmix_alpha, self.cutmix_alpha)
            return cutmix(imgs, labels, cutmix_box(*imgs.shape[-2:], lam), perm)
        return mixup(imgs, labels, np.random.beta(self.mixup_alpha, self.mixup_alpha), perm)


def build_mix(cfg):
    """The ``MIX`` section (``{name: VideoMix, ...}``) -> its batch operator; None for no section."""
    if not cfg:
        return None
    from ..common.registry import build_from_config

    return build_from_config(cfg, BATCH_MIXES)
