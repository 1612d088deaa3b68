"""Top-1 / top-5 accuracy over a whole test set (PaddleVideo's ``CenterCropMetric``)."""

import numpy as np

from ..utils import dist
from .registry import METRIC


def topk_accuracy(scores, labels, k):
    """Fraction of rows whose label is among the ``k`` highest scores.

    Args:
        scores: ``[N, num_classes]`` float array.
        labels: ``[N]`` int array.
    Ties are broken by ``argsort`` order (stable, lower class id first among equal scores).
    """
    if len(labels) == 0:
        return 0.0
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


@METRIC.register()
class CenterCropMetric:
    """Collects per-clip scores; ``accumulate()`` gathers them from every process and scores them.

    A distributed sampler pads the last batch by repeating clips; clips are de-duplicated by their
    dataset index, so every clip counts once however many processes ran.

    Args:
        data_size: number of clips in the test set (to count the ones never seen).
        batch_size: clips per batch per process (for logging only).
        log_interval: batches between progress log lines.
    """

    def __init__(self, data_size, batch_size=1, log_interval=20, **unused):
        self.data_size = int(data_size)
        self.batch_size = batch_size
        self.log_interval = log_interval
        self._scores, self._labels, self._indices = [], [], []
        self.result = None

    def update(self, batch_id, data, outputs):
        """Record one batch.

        Args:
            batch_id: batch number (unused; kept for PaddleVideo's signature).
            data: the test batch ``[imgs, labels [B, 1], indices [B]]``.
            outputs: scores ``[B, num_classes]`` (paddle tensor or numpy).
        """
        labels, indices = data[1], data[2]
        self._scores.append(_numpy(outputs).astype("float32"))
        self._labels.append(_numpy(labels).reshape(-1).astype("int64"))
        self._indices.append(_numpy(indices).reshape(-1).astype("int64"))

    def gathered(self):
        """``(indices [M], labels [M], scores [M, C])`` over all processes, sorted by index, unique."""
        if self._scores:
            scores = np.concatenate(self._scores)
            labels = np.concatenate(self._labels)
            indices = np.concatenate(self._indices)
        else:
            scores = np.zeros((0, 0), "float32")
            labels = np.zeros((0,), "int64")
            indices = np.zeros((0,), "int64")
        indices = dist.all_gather_arrays(indices)
        labels = dist.all_gather_arrays(labels)
        widths = [s for s in dist.all_gather_arrays(np.asarray([scores.shape[1]]))]
        width = max(widths) if len(widths) else scores.shape[1]
        if scores.shape[1] != width:  # a rank that saw no clips has a [0, 0] array
            scores = np.zeros((0, width), "float32")
        scores = dist.all_gather_arrays(scores)
        order, first = np.unique(indices, return_index=True)
        return order, labels[first], scores[first]

    def accumulate(self):
        """Gather, score and return ``{'top1', 'top5', 'num_clips', 'num_failed', 'failed_indices'}``."""
        indices, labels, scores = self.gathered()
        failed = sorted(set(range(self.data_size)) - set(indices.tolist()))
        self.result = {
            "top1": topk_accuracy(scores, labels, 1) if len(labels) else 0.0,
            "top5": topk_accuracy(scores, labels, 5) if len(labels) else 0.0,
            "num_clips": int(len(indices)),
            "num_failed": len(failed),
            "failed_indices": failed,
            "indices": indices,
            "labels": labels,
            "scores": scores,
        }
        return self.result

    def save_scores(self, path):
        """Write the gathered ``indices``, ``labels``, ``scores`` as an ``.npz`` (after accumulate)."""
        import os

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        r = self.result
        tmp = path + ".tmp.npz"
        np.savez(tmp, indices=r["indices"], labels=r["labels"], scores=r["scores"])
        os.replace(tmp, path)


def _numpy(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)
