"""Pipeline operators; importing this package registers them in ``PIPELINES``."""

from .augmentations import (CenterCrop, Image2Array, JitterScale, Normalization, RandomCrop, RandomFlip,
                            UniformCrop)
from .compose import Compose
from .decode import VideoDecoder
from .sample import Sampler

__all__ = ["CenterCrop", "Compose", "Image2Array", "JitterScale", "Normalization", "RandomCrop", "RandomFlip",
           "Sampler", "UniformCrop", "VideoDecoder"]
