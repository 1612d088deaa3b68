"""Registries for the data parts a config names."""

from ..common.registry import Registry

PIPELINES = Registry("pipeline operator")
DATASETS = Registry("dataset")
BATCH_MIXES = Registry("batch mixer")  # the MIX section: operators on a whole training batch (VideoMix)
