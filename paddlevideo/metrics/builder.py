"""Build the metric a config names (``METRIC.name``)."""

from ..common.registry import build_from_config
from .registry import METRIC


def build_metric(cfg, **extra):
    """Instantiate ``METRIC.get(cfg.name)`` with the section's keys plus ``extra`` (e.g. ``data_size``)."""
    return build_from_config(cfg, METRIC, **extra)
