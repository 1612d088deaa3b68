"""The test report's numbers against an independent numpy computation from saved scores (the
``test_scores.npz`` that ``main.py --test --save_scores`` writes)."""

import csv
import json

import numpy as np
import pytest

from paddlevideo.visualization.files import VisualizationError
from paddlevideo.visualization.report import most_confused_classes, write_test_report


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def saved_scores(tmp_path, num_clips=300, num_classes=7, seed=0):
    """A ``test_scores.npz`` as CenterCropMetric.save_scores writes it: a noisy classifier's scores."""
    from paddlevideo.metrics.center_crop import CenterCropMetric

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_clips)
    scores = rng.normal(size=(num_clips, num_classes)).astype("float32")
    scores[np.arange(num_clips), labels] += 1.2  # right more often than not
    metric = CenterCropMetric(data_size=num_clips + 2)
    metric.update(0, [None, labels.reshape(-1, 1), np.arange(num_clips)], scores)
    metric.accumulate()
    path = tmp_path / "test_scores.npz"
    metric.save_scores(str(path))
    return path


def test_report_numbers_equal_numpy_from_saved_scores(tmp_path):
    saved = np.load(saved_scores(tmp_path))
    labels, scores = saved["labels"], saved["scores"]
    names = {0: "archery", 1: "bowling", 2: "juggling, balls", 3: "surfing", 4: "yoga", 5: "zumba", 6: "abseiling"}
    summary = write_test_report(tmp_path / "report", labels, scores, names, skipped=["a.mp4", "b.mp4"])

    # independent computation: loops, not the report's vectorised code
    num_classes = scores.shape[1]
    predicted = [int(np.flatnonzero(row == row.max())[0]) for row in scores]
    matrix = np.zeros((num_classes, num_classes), int)
    for true, pred in zip(labels, predicted):
        matrix[true, pred] += 1
    written = read_csv(tmp_path / "report" / "confusion_matrix.csv")
    assert written[0] == ["true \\ predicted"] + [names[c] for c in range(num_classes)]
    assert np.array_equal(np.array([[int(v) for v in row[1:]] for row in written[1:]]), matrix)

    per_class = read_csv(tmp_path / "report" / "per_class_accuracy.csv")
    for c, row in enumerate(per_class[1:]):
        members = [i for i in range(len(labels)) if labels[i] == c]
        hits = sum(predicted[i] == c for i in members)
        assert row[:4] == [str(c), names[c], str(len(members)), str(hits)]
        assert float(row[4]) == pytest.approx(hits / len(members), abs=1e-6)
        wrong = [predicted[i] for i in members if predicted[i] != c]
        top_wrong = max(sorted(set(wrong)), key=wrong.count)
        assert row[5:] == [names[top_wrong], str(wrong.count(top_wrong))]

    assert summary["top1"] == pytest.approx(np.mean(np.array(predicted) == labels))
    top5 = [labels[i] in np.argsort(-scores[i], kind="stable")[:5] for i in range(len(labels))]
    assert summary["top5"] == pytest.approx(np.mean(top5))
    accuracies = [np.mean(np.array(predicted)[labels == c] == c) for c in range(num_classes)]
    assert summary["mean_class_accuracy"] == pytest.approx(np.mean(accuracies))
    assert summary["num_clips"] == len(labels) and summary["num_skipped"] == 2
    assert json.loads((tmp_path / "report" / "summary.json").read_text()) == summary

    pairs = read_csv(tmp_path / "report" / "most_confused.csv")[1:]
    counts = [int(row[4]) for row in pairs]
    assert counts == sorted(counts, reverse=True)
    expected_pairs = sorted(((t, p) for t in range(num_classes) for p in range(num_classes) if t != p and matrix[t, p]),
                            key=lambda tp: (-matrix[tp], tp))
    assert [(int(row[0]), int(row[2])) for row in pairs] == expected_pairs
    assert (tmp_path / "report" / "skipped.txt").read_text() == "a.mp4\nb.mp4\n"
    with open(tmp_path / "report" / "confusion_matrix.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_many_classes_show_the_most_confused(tmp_path):
    rng = np.random.default_rng(1)
    num_classes = 120
    labels = np.repeat(np.arange(num_classes), 3)
    scores = np.eye(num_classes)[labels] * 5 + rng.normal(size=(len(labels), num_classes)) * 0.1
    # classes 7 <-> 99 and 13 -> 50 are confused a lot
    scores[labels == 7, 99] += 10
    scores[labels == 99, 7] += 10
    scores[labels == 13, 50] += 10
    summary = write_test_report(tmp_path, labels, scores)
    assert summary["num_classes"] == num_classes and summary["top1"] == pytest.approx(1 - 9 / 360)
    matrix = np.array([[int(v) for v in row[1:]] for row in read_csv(tmp_path / "confusion_matrix.csv")[1:]])
    shown = most_confused_classes(matrix)
    assert shown.tolist() == [7, 13, 50, 99]  # the classes with errors, not 30 error-free ones
    assert read_csv(tmp_path / "most_confused.csv")[1][:5] == ["7", "7", "99", "99", "3"]
    # many classes with errors: the 30 with the most
    noisy = rng.integers(0, num_classes, size=(num_classes, num_classes)) * (rng.uniform(size=(num_classes,) * 2) < 0.05)
    errors = noisy.sum(axis=0) + noisy.sum(axis=1) - 2 * np.diag(noisy)
    shown = most_confused_classes(noisy)
    assert len(shown) == 30 and errors[shown].min() >= np.sort(errors)[-30]


@pytest.mark.parametrize("labels, scores, message", [
    (np.zeros(0, int), np.zeros((0, 4)), "no clip was scored"),
    (np.array([0, 1]), np.zeros((3, 4)), "one row per label"),
    (np.array([0, 1]), np.array([[0.0, np.nan], [1.0, 0.0]]), "NaN/inf"),
    (np.array([0, 4]), np.zeros((2, 4)), "labels must be class ids 0..3"),
])
def test_bad_inputs_are_errors_not_numbers(tmp_path, labels, scores, message):
    with pytest.raises(VisualizationError, match=message):
        write_test_report(tmp_path, labels, scores)
    assert not (tmp_path / "summary.json").exists()
