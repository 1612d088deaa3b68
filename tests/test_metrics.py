"""CenterCropMetric against a naive per-clip loop."""

import numpy as np

from paddlevideo.metrics import build_metric, topk_accuracy
from paddlevideo.config import AttrDict


def _naive_topk(scores, labels, k):
    hits = 0
    for row, label in zip(scores, labels):
        ranked = sorted(range(len(row)), key=lambda c: (-row[c], c))
        hits += label in ranked[:k]
    return hits / len(labels)


def test_topk_matches_naive_loop():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 7)).astype("float32")
    labels = rng.integers(0, 7, size=50)
    for k in (1, 3, 5):
        assert topk_accuracy(scores, labels, k) == _naive_topk(scores, labels, k)


def test_center_crop_metric_dedups_and_counts_failures(tmp_path):
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(10, 6)).astype("float32")
    labels = rng.integers(0, 6, size=10)
    metric = build_metric(AttrDict({"name": "CenterCropMetric"}), data_size=12, batch_size=4)
    seen = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]  # clip 0 repeated (sampler padding); 10 and 11 never seen (broken)
    for b in range(0, len(seen), 4):
        idx = np.asarray(seen[b:b + 4])
        metric.update(b // 4, [None, labels[idx].reshape(-1, 1), idx], scores[idx])
    metric.update(3, [None, np.zeros((0, 1), "int64"), np.zeros((0,), "int64")], np.zeros((0, 6), "float32"))
    result = metric.accumulate()
    assert result["num_clips"] == 10 and result["num_failed"] == 2 and result["failed_indices"] == [10, 11]
    assert result["top1"] == _naive_topk(scores, labels, 1)
    assert result["top5"] == _naive_topk(scores, labels, 5)
    metric.save_scores(str(tmp_path / "s.npz"))
    saved = np.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(saved["indices"], np.arange(10))
    np.testing.assert_array_equal(saved["scores"], scores)
