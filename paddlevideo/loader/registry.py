"""Registries for the data parts a config names."""

from ..utils.registry import Registry

PIPELINES = Registry("pipeline operator")
DATASETS = Registry("dataset")
