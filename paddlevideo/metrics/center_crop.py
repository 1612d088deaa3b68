"""Top-1 / top-5 accuracy over a whole test set (PaddleVideo's ``CenterCropMetric``)."""

import numpy as np

from ..common import dist
from ..common.errors import RunError
from .registry import METRIC


class MetricError(RunError):
    """A metric was asked for on no data or on data that cannot be right (a number would be a lie).

    ``indices`` lists the dataset indices of the clips at fault, when there are such clips.
    """

    def __init__(self, message, indices=()):
        super().__init__(message)
        self.indices = list(indices)


def invalid_rows(scores, labels):
    """``(reason, rows)`` for the first kind of row that makes an accuracy meaningless, or ``None``.

    Kinds: a label outside ``[0, num_classes)``; a NaN/inf score. ``reason`` is a format string with a
    ``{where}`` field for the first bad row.
    """
    bad = np.flatnonzero((labels < 0) | (labels >= scores.shape[1]))
    if bad.size:
        return f"label {labels[bad[0]]} ({{where}}) is outside the model's {scores.shape[1]} classes", bad
    bad = np.flatnonzero(~np.all(np.isfinite(scores), axis=1))
    if bad.size:
        return f"{bad.size} clip(s) have NaN/inf scores (first: {{where}}); the weights or inputs are broken", bad
    return None


def topk_accuracy(scores, labels, k):
    """Fraction of rows whose label is among the ``k`` highest scores.

    Args:
        scores: ``[N, num_classes]`` float array.
        labels: ``[N]`` int array, each in ``[0, num_classes)``.
    Ties are broken by ``argsort`` order (stable, lower class id first among equal scores).
    Raises:
        MetricError: no rows, rows that disagree in number, or a row :func:`invalid_rows` rejects.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    if len(labels) == 0:
        raise MetricError("top-k accuracy of no clip: nothing was scored")
    if scores.ndim != 2 or scores.shape[0] != len(labels):
        raise MetricError(f"scores of shape {list(scores.shape)} do not match {len(labels)} labels")
    invalid = invalid_rows(scores, labels)
    if invalid is not None:
        reason, rows = invalid
        raise MetricError(reason.format(where=f"row {rows[0]}"), rows.tolist())
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

    def __init__(self, data_size: int, batch_size: int = 1, log_interval: int = 20, **unused):
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
        scores = _numpy(outputs).astype("float32")
        labels = _numpy(data[1]).reshape(-1).astype("int64")
        indices = _numpy(data[2]).reshape(-1).astype("int64")
        if scores.ndim != 2 or not scores.shape[0] == len(labels) == len(indices):
            raise MetricError(f"batch {batch_id}: {len(indices)} clips and {len(labels)} labels but scores of "
                              f"shape {list(scores.shape)}; the model must return one score row per clip")
        self._scores.append(scores)
        self._labels.append(labels)
        self._indices.append(indices)

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
        """Gather, score and return ``{'top1', 'top5', 'num_clips', 'num_failed', 'failed_indices'}``.

        Raises:
            MetricError: no clip was scored (``indices`` = every clip), or the scores cannot be right
                (see :func:`topk_accuracy`; ``indices`` = the dataset indices at fault).
        """
        indices, labels, scores = self.gathered()
        failed = sorted(set(range(self.data_size)) - set(indices.tolist()))
        if not len(indices):
            raise MetricError(f"no clip was scored: all {self.data_size} clips were skipped", failed)
        if indices.max() >= self.data_size or indices.min() < 0:
            raise MetricError(f"clip index {int(indices.max())} is outside the {self.data_size} clips of the set")
        invalid = invalid_rows(scores, labels)
        if invalid is not None:
            reason, rows = invalid
            raise MetricError(reason.format(where=f"clip index {indices[rows[0]]}"), indices[rows].tolist())
        self.result = {
            "top1": topk_accuracy(scores, labels, 1),
            "top5": topk_accuracy(scores, labels, 5),
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
        from ..common.save_load import atomic_write

        r = self.result

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, indices=r["indices"], labels=r["labels"], scores=r["scores"])

        atomic_write(path, write)


def _numpy(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)
