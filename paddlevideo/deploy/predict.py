"""Predict video classes with an exported model: the loop behind ``tools/predict.py``.

Preprocessing is the config's test pipeline (``build_pipeline(cfg.PIPELINE.test)``), the same code path as
``main.py --test``; the model is any :class:`~.backends.base.Predictor`. Softmax and top-k here, then text
(PaddleVideo's lines) or JSON.
"""

import json

import numpy as np

from ..loader.pipelines.sample import repeated_frames_note
from ..common.errors import first_line


def softmax(logits):
    """Row-wise softmax of ``[N, C]`` logits (float64 internally for stability)."""
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def top_k(probs, k):
    """``[C]`` probabilities -> (ids, scores) of the ``k`` largest, best first."""
    k = max(1, min(int(k), probs.shape[-1]))
    ids = np.argsort(-probs, kind="stable")[:k]
    return [int(i) for i in ids], [float(probs[i]) for i in ids]


def _batches(items, size):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def outputs_probabilities(cfg):
    """True when the model's outputs are probabilities already: ``MODEL.runtime_cfg.test.avg_type: prob`` averages
    the views' softmaxes inside the model (and so in every export of it); otherwise they are logits."""
    return ((cfg.MODEL.get("runtime_cfg") or {}).get("test") or {}).get("avg_type") == "prob"


def class_probabilities(outputs, probabilities=False):
    """``[N, C]`` model outputs -> class probabilities: the softmax of logits, or (``probabilities``, see
    :func:`outputs_probabilities`) the outputs as they are (PaddleVideo applies softmax to them a second time,
    which keeps the class but flattens the score towards 1/C)."""
    return np.asarray(outputs, np.float64) if probabilities else softmax(outputs)


def predict_videos(files, pipeline, predictor, batch_size=1, k=1, label_names=None, timer=None, probabilities=False):
    """Run ``pipeline`` + ``predictor`` on each file; yields one result dict per file, in order.

    A result is ``{'file', 'class_ids', 'class_names', 'scores'}`` (top-``k`` probabilities, best first,
    :func:`class_probabilities` of the outputs; names None without a label list) or ``{'file', 'error'}`` (a
    one-line message naming the file) when the video cannot be decoded or the model rejects it; plus
    ``'warning'`` (one line) when the video had fewer frames than a clip takes and frames were repeated.
    ``files`` may be a progress bar.
    ``timer``, if given, is a dict that accumulates seconds under ``preprocess`` / ``inference`` /
    ``postprocess``.
    """
    import time

    timer = timer if timer is not None else {}
    for batch in _batches(files, max(1, int(batch_size))):
        start = time.perf_counter()
        clips, results = [], []
        for path in batch:
            try:
                made = pipeline({"filename": path})
                clips.append(made["imgs"])
                results.append({"file": path})
                note = repeated_frames_note(made)
                if note:
                    results[-1]["warning"] = note
            except Exception as err:  # decoders raise VideoOpenError / VideoDecodeError naming the file
                message = first_line(err)
                if path not in message:
                    message = f"{path}: {message}"
                results.append({"file": path, "error": message})
        ok = [r for r in results if "error" not in r]
        timer["preprocess"] = timer.get("preprocess", 0.0) + time.perf_counter() - start
        if ok:
            start = time.perf_counter()
            try:
                logits = predictor(np.stack(clips))
            except Exception as err:  # e.g. input shape of another config
                for result in ok:
                    result["error"] = f"{result['file']}: the model rejected the clip ({first_line(err)})"
                logits = None
            timer["inference"] = timer.get("inference", 0.0) + time.perf_counter() - start
            if logits is not None:
                start = time.perf_counter()
                for result, probs in zip(ok, class_probabilities(logits, probabilities)):
                    ids, scores = top_k(probs, k)
                    result["class_ids"] = ids
                    result["class_names"] = [label_names.get(i, str(i)) for i in ids] if label_names else None
                    result["scores"] = scores
                timer["postprocess"] = timer.get("postprocess", 0.0) + time.perf_counter() - start
        yield from results


def format_text(result):
    """PaddleVideo's lines: ``Current video file: <path>``, ``\\ttop-1 class: <id>``, ``\\ttop-1 score: <p>``,
    plus ``\\ttop-1 class name: <name>`` with a label list. For k > 1 the values are lists."""
    k = len(result["class_ids"])
    ids = result["class_ids"][0] if k == 1 else result["class_ids"]
    scores = result["scores"][0] if k == 1 else result["scores"]
    lines = [f"Current video file: {result['file']}", f"\ttop-{k} class: {ids}", f"\ttop-{k} score: {scores}"]
    if result.get("class_names"):
        names = result["class_names"][0] if k == 1 else result["class_names"]
        lines.append(f"\ttop-{k} class name: {names}")
    return "\n".join(lines)


def format_json(result):
    """One JSON object per line: ``file``, ``class_ids``, ``class_names``, ``scores`` (or ``error``)."""
    return json.dumps(result, ensure_ascii=False)
