"""Registries for the model parts a config names."""

from ..common.registry import Registry

BACKBONES = Registry("backbone")
HEADS = Registry("head")
RECOGNIZERS = Registry("framework")
LOSSES = Registry("loss")
