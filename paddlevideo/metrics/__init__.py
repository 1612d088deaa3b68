"""Evaluation metrics, registered by the name configs use (``METRIC.name``)."""

from .builder import build_metric
from .center_crop import CenterCropMetric, topk_accuracy
from .registry import METRIC

__all__ = ["METRIC", "CenterCropMetric", "build_metric", "topk_accuracy"]
