"""Pipeline operators; importing this package registers them in ``PIPELINES``."""

from .augmentations import (CenterCrop, Image2Array, JitterScale, Normalization, RandomCrop, RandomFlip,
                            UniformCrop)
from .base import ClipSpec, Operator
from .compose import Compose, PipelineError
from .decode import VideoDecoder
from .sample import Sampler, Window

__all__ = ["CenterCrop", "ClipSpec", "Compose", "Image2Array", "JitterScale", "Normalization", "Operator",
           "PipelineError", "RandomCrop", "RandomFlip", "Sampler", "UniformCrop", "VideoDecoder", "Window"]
