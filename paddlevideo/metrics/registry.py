"""Registry for the metrics a config names (``METRIC.name``)."""

from ..common.registry import Registry

METRIC = Registry("metric")
