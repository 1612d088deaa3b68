"""Optimizers and learning-rate schedules built from the OPTIMIZER config section."""

from .lr import CustomWarmupCosineDecay, MultiStepDecay, WarmupCosine, build_lr
from .optimizer import build_grad_clip, build_optimizer

__all__ = ["CustomWarmupCosineDecay", "MultiStepDecay", "WarmupCosine", "build_grad_clip", "build_lr",
           "build_optimizer"]
