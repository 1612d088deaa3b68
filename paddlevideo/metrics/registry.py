"""Registry for the metrics a config names (``METRIC.name``)."""

from ..utils.registry import Registry

METRIC = Registry("metric")
