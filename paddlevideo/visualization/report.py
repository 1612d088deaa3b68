"""The test report: per-class accuracy, the confusion matrix (CSV and PNG), the most confused pairs, the
clips that were skipped, and a summary, from the test set's labels and scores.

Files written into the report folder:

- ``summary.json``: clips scored and skipped, top-1, top-5, mean per-class accuracy.
- ``per_class_accuracy.csv``: per class its clips, correct top-1 predictions, accuracy and the class it is
  most often mistaken for.
- ``confusion_matrix.csv``: counts, rows the true class, columns the predicted class (top-1).
- ``confusion_matrix.png``: the matrix coloured by the share of each true class's clips; the whole matrix up
  to :data:`WHOLE_MATRIX_MAX` classes, else the :data:`MOST_CONFUSED_CLASSES` classes with the most errors.
- ``most_confused.csv``: (true, predicted) pairs with the most errors first.
- ``skipped.txt``: one skipped clip per line (empty when none were).

The folder is written whole (``common/staging.py``): the six files are written in a hidden staging folder that
then takes the report folder's place, so a report is never a mix of two runs' files. An existing report folder
holding other files is not replaced (:class:`~paddlevideo.common.errors.OutputError`).
"""

import csv
import io
import json
import os

import numpy as np

from ..metrics.center_crop import topk_accuracy
from ..common.staging import staged_folder
from .files import VisualizationError, atomic_output, write_text

REPORT_FILES = ("summary.json", "per_class_accuracy.csv", "confusion_matrix.csv", "confusion_matrix.png",
                "most_confused.csv", "skipped.txt")

WHOLE_MATRIX_MAX = 50
MOST_CONFUSED_CLASSES = 30
COUNTS_IN_CELLS_MAX = 20  # above this many classes the cells are too small for numbers


def _class_names(class_names, num_classes):
    """``{id: name}``, a list of names, or None -> a list of ``num_classes`` names (the id where unknown)."""
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    if isinstance(class_names, dict):
        return [str(class_names.get(i, i)) for i in range(num_classes)]
    names = [str(n) for n in class_names]
    return names[:num_classes] + [str(i) for i in range(len(names), num_classes)]


def _check(labels, scores):
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise VisualizationError(f"test report: scores must be [clips, classes] with one row per label; got "
                                 f"scores {scores.shape} for {labels.shape[0]} labels")
    if labels.shape[0] == 0:
        raise VisualizationError("test report: no clip was scored (all skipped or an empty test list); "
                                 "nothing to report")
    if not np.all(np.isfinite(scores)):
        bad = int(np.sum(~np.all(np.isfinite(scores), axis=1)))
        raise VisualizationError(f"test report: {bad} clip(s) have NaN/inf scores; the model output is broken")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise VisualizationError(f"test report: labels must be class ids 0..{scores.shape[1] - 1}, got values "
                                 f"{labels.min()}..{labels.max()}; does the label list match MODEL.head.num_classes?")
    return labels.astype(np.int64), scores


def confusion_matrix(labels, predicted, num_classes):
    """``[C, C]`` counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def most_confused_pairs(matrix):
    """``[(true, predicted, count)]`` over the off-diagonal cells with errors, most errors first
    (ties: lower true id, then lower predicted id)."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    true, pred = np.nonzero(off)
    order = np.lexsort((pred, true, -off[true, pred]))
    return [(int(true[i]), int(pred[i]), int(off[true[i], pred[i]])) for i in order]


def most_confused_classes(matrix, count=MOST_CONFUSED_CLASSES):
    """Up to ``count`` classes with the most errors as true or as predicted class, sorted by id (only classes
    with errors, unless fewer than two have any)."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    errors = off.sum(axis=0) + off.sum(axis=1)
    order = np.lexsort((np.arange(len(errors)), -errors))[:count]
    if np.count_nonzero(errors[order]) >= 2:
        order = order[errors[order] > 0]
    return np.sort(order)


def _csv(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _plot_confusion(path, matrix, names, classes, title):
    from matplotlib.figure import Figure

    sub = matrix[np.ix_(classes, classes)]
    totals = matrix.sum(axis=1)[classes]
    share = sub / np.maximum(totals, 1)[:, None]
    size = len(classes)
    side = min(16.0, max(4.5, 0.32 * size + 2.5))
    fig = Figure(figsize=(side + 1.2, side), dpi=100)
    axis = fig.subplots()
    image = axis.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of the true class's clips")
    labels = [names[i] for i in classes]
    font = 8 if size <= 30 else 6
    axis.set_xticks(range(size))
    axis.set_yticks(range(size))
    axis.set_xticklabels(labels, rotation=90, fontsize=font)
    axis.set_yticklabels(labels, fontsize=font)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    if size <= COUNTS_IN_CELLS_MAX:
        for i in range(size):
            for j in range(size):
                if sub[i, j]:
                    axis.text(j, i, str(sub[i, j]), ha="center", va="center", fontsize=7,
                              color="white" if share[i, j] > 0.5 else "black")
    axis.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")


def _write_tables(path, matrix, names, accuracy):
    """per_class_accuracy.csv, confusion_matrix.csv and most_confused.csv from the ``[C, C]`` count matrix."""
    clips, correct = matrix.sum(axis=1), np.diag(matrix)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    rows = [["class_id", "class_name", "clips", "correct", "accuracy", "most_confused_with", "confused_clips"]]
    for c in range(len(names)):
        worst = int(np.argmax(off[c])) if off[c].any() else None
        rows.append([c, names[c], int(clips[c]), int(correct[c]),
                     "" if clips[c] == 0 else f"{accuracy[c]:.6f}",
                     "" if worst is None else names[worst], 0 if worst is None else int(off[c, worst])])
    write_text(path["per_class_accuracy.csv"], _csv(rows))

    header = ["true \\ predicted"] + names
    write_text(path["confusion_matrix.csv"],
               _csv([header] + [[names[c]] + [int(v) for v in matrix[c]] for c in range(len(names))]))

    pair_rows = [["true_id", "true_name", "predicted_id", "predicted_name", "clips", "share_of_true_class"]]
    for true, pred, count in most_confused_pairs(matrix):
        pair_rows.append([true, names[true], pred, names[pred], count, f"{count / clips[true]:.6f}"])
    write_text(path["most_confused.csv"], _csv(pair_rows))


def write_test_report(folder, labels, scores, class_names=None, skipped=()):
    """Write the test report (module docstring) into ``folder`` and return its summary dict.

    Args:
        folder: output folder (created).
        labels: ``[N]`` true class ids of the scored clips.
        scores: ``[N, C]`` class scores (logits or probabilities; top-1 is the arg-max, ties to the lower id).
        class_names: ``{id: name}`` or a list of names (e.g. from the label list), or None for ids.
        skipped: names (or indices) of the clips that could not be read.
    Returns:
        ``summary.json``'s content (``top1``, ``top5``, ``mean_class_accuracy``, ``num_clips``,
        ``num_skipped``, ``num_classes``, ``files``).
    Raises:
        VisualizationError: no clip scored, mismatched shapes, NaN scores, or labels outside the classes.
    """
    labels, scores = _check(labels, scores)
    skipped = [str(name) for name in skipped]
    num_classes = scores.shape[1]
    names = _class_names(class_names, num_classes)
    predicted = np.argmax(scores, axis=1)
    matrix = confusion_matrix(labels, predicted, num_classes)
    clips = matrix.sum(axis=1)
    correct = np.diag(matrix)
    accuracy = np.where(clips > 0, correct / np.maximum(clips, 1), np.nan)
    with staged_folder(folder, REPORT_FILES, flag="test report") as staging:
        path = {name: os.path.join(staging, name) for name in REPORT_FILES}
        _write_tables(path, matrix, names, accuracy)
        write_text(path["skipped.txt"], "".join(f"{name}\n" for name in skipped))

        if num_classes <= WHOLE_MATRIX_MAX:
            shown, title = np.arange(num_classes), f"confusion matrix ({len(labels)} clips, {num_classes} classes)"
        else:
            shown = most_confused_classes(matrix)
            title = (f"confusion matrix: the {len(shown)} most confused of {num_classes} classes "
                     f"({len(labels)} clips)")
        _plot_confusion(path["confusion_matrix.png"], matrix, names, shown, title)
        summary = _summary(labels, scores, skipped, num_classes, accuracy, clips)
        write_text(path["summary.json"], json.dumps(summary, indent=1) + "\n")
    return summary


def _summary(labels, scores, skipped, num_classes, accuracy, clips):
    """``summary.json``'s content (see :func:`write_test_report`)."""
    return {
        "num_clips": int(len(labels)),
        "num_skipped": len(skipped),
        "num_classes": int(num_classes),
        "top1": topk_accuracy(scores, labels, 1),
        "top5": topk_accuracy(scores, labels, 5),
        "mean_class_accuracy": float(np.nanmean(accuracy)),
        "classes_without_clips": int(np.sum(clips == 0)),
        "files": sorted(REPORT_FILES),
    }
