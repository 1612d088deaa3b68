"""Per-clip transforms. After ``Image2Array`` a clip is float32 ``[3, T, H, W]`` (``cthw``) or ``[T, 3, H, W]``
(``tchw``); the spatial transforms act on the last two axes, so they work on either layout.

Random choices use numpy's global generator (seeded per loader worker by ``paddle.io.DataLoader``).

Each operator lists the results keys it needs (``requires``) and sets (``adds``; keys it only rewrites, like
``imgs``, are named in its docstring); the spatial ones need ``data_format``, i.e. ``Image2Array`` before them.
"""

import math

import numpy as np

from ...common.rules import ListOf, OneOf, Positive, PositiveInt, Probability
from ..registry import PIPELINES
from .base import Operator

_SPATIAL = ("imgs", "data_format")  # what a spatial transform needs: a 4-D clip from Image2Array
DATA_FORMATS = ("cthw", "tchw")


def _clip_array(results, op):
    imgs = results.get("imgs")
    if not isinstance(imgs, np.ndarray) or imgs.ndim != 4:
        raise ValueError(f"{op} needs results['imgs'] as a 4-D array; put Image2Array before it")
    return imgs


def _time_axis(results):
    return 0 if results.get("data_format", "cthw") == "tchw" else 1


@PIPELINES.register()
class Normalization(Operator):
    """uint8 frames ``[T, H, W, 3]`` -> float32 ``(x / 255 - mean) / std``, computed in float64.

    Requires ``imgs`` (rewritten). Adds nothing.

    As in the reference, ``mean`` and ``std`` are held as float32 values (the float32 nearest 0.45 is used in
    the float64 arithmetic); ``tensor_shape`` is the shape they broadcast with, ``[1, 1, 1, 3]`` for THWC frames.
    """

    requires = ("imgs",)

    def __init__(self, mean: ListOf(float), std: ListOf(Positive), tensor_shape: ListOf(PositiveInt) = (3, 1, 1)):
        for key, value in (("mean", mean), ("std", std)):
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"Normalization: '{key}' must be a list, got {type(value).__name__}")
        self.mean = np.array(mean).reshape(tensor_shape).astype(np.float32)
        self.std = np.array(std).reshape(tensor_shape).astype(np.float32)

    def __call__(self, results):
        imgs = np.asarray(results["imgs"])
        normalised = imgs / 255.0  # float64, as the reference computes it
        normalised -= self.mean
        normalised /= self.std
        results["imgs"] = normalised.astype(np.float32)
        return results


@PIPELINES.register()
class Image2Array(Operator):
    """Frames ``[T, H, W, C]`` -> float32 ``[C, T, H, W]`` (``data_format: cthw``) or ``[T, C, H, W]`` (``tchw``).

    Requires ``imgs`` (rewritten). Adds ``data_format``.
    """

    requires = ("imgs",)
    adds = ("data_format",)

    def __init__(self, data_format: OneOf(*DATA_FORMATS) = "tchw"):
        if data_format not in DATA_FORMATS:
            raise ValueError(f"Image2Array: data_format must be 'cthw' or 'tchw', got '{data_format}'")
        self.data_format = data_format

    def infer_spec(self, spec):
        return spec.replace(layout=self.data_format)

    def __call__(self, results):
        imgs = np.asarray(results["imgs"], dtype=np.float32)
        axes = (3, 0, 1, 2) if self.data_format == "cthw" else (0, 3, 1, 2)
        results["imgs"] = np.ascontiguousarray(imgs.transpose(axes))
        results["data_format"] = self.data_format
        return results


def resize_bilinear(imgs, height, width):
    """Resize the last two axes of float32 ``[A, B, H, W]`` to ``[A, B, height, width]``.

    ``paddle.nn.functional.interpolate(mode='bilinear', align_corners=False)``, as the reference calls it:
    half-pixel centres, source coordinates below 0 clamp to 0, no antialiasing. Using the same kernel keeps
    the output bit-identical to PaddleVideo's (it computes the scale ratio in float32, which moves values by
    up to ~1e-4 against exact float64 arithmetic; OpenCV's INTER_LINEAR differs from both by similar amounts).
    """
    import paddle
    import paddle.nn.functional as F

    with paddle.no_grad():
        out = F.interpolate(paddle.to_tensor(np.ascontiguousarray(imgs, dtype=np.float32)),
                            size=(height, width), mode="bilinear", align_corners=False, data_format="NCHW")
    return out.numpy()


def jitter_size(height, width, short):
    """Output ``(height, width)`` when the short side becomes ``short``: the long side is ``floor(long / short_side * short)``."""
    if width < height:
        return int(math.floor(height / width * short)), short
    return short, int(math.floor(width / height * short))


@PIPELINES.register()
class JitterScale(Operator):
    """Scale so the short side is ``round(uniform(min_size, max_size))`` (unchanged if it already is).

    Requires ``imgs`` (rewritten), ``data_format``. Adds nothing.
    """

    requires = _SPATIAL

    def __init__(self, min_size: PositiveInt, max_size: PositiveInt):
        if min_size > max_size or min_size < 1:
            raise ValueError(f"JitterScale: need 1 <= min_size <= max_size, got {min_size}, {max_size}")
        self.min_size = min_size
        self.max_size = max_size

    def infer_spec(self, spec):
        return spec.replace(height=None, width=None)  # the long side follows each video's aspect ratio

    def __call__(self, results):
        imgs = _clip_array(results, "JitterScale")
        height, width = imgs.shape[-2:]
        short = int(round(np.random.uniform(self.min_size, self.max_size)))
        if min(height, width) == short:
            return results
        results["imgs"] = resize_bilinear(imgs, *jitter_size(height, width, short))
        return results


def _check_fits(imgs, size, op):
    height, width = imgs.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"{op}: frames {height}x{width} are smaller than target_size {size}; scale them first")
    return height, width


class _SquareCrop(Operator):
    """Base of the crops that cut one ``target_size`` square out of every frame; a subclass chooses where
    (:meth:`offset`). Sets ``crop_offset`` when the subclass lists it in ``adds``."""

    requires = _SPATIAL

    def infer_spec(self, spec):
        return spec.replace(height=self.target_size, width=self.target_size)

    def offset(self, height, width, size):
        """``(y, x)`` of the square's top-left corner in a ``height`` x ``width`` frame (pixels)."""
        raise NotImplementedError

    def __call__(self, results):
        name = type(self).__name__
        imgs = _clip_array(results, name)
        size = self.target_size
        height, width = _check_fits(imgs, size, name)
        y, x = self.offset(height, width, size)
        results["imgs"] = np.ascontiguousarray(imgs[..., y:y + size, x:x + size])
        if "crop_offset" in self.adds:
            results["crop_offset"] = (y, x)
        return results


@PIPELINES.register()
class RandomCrop(_SquareCrop):
    """A random ``target_size`` square; offsets drawn uniformly from ``[0, W - size)`` and ``[0, H - size)``.

    The range is half-open as in the reference (the last offset is never drawn); a side equal to
    ``target_size`` gets offset 0. Requires ``imgs`` (rewritten), ``data_format``. Adds ``crop_offset``.
    """

    adds = ("crop_offset",)

    def __init__(self, target_size: PositiveInt):
        self.target_size = target_size

    def offset(self, height, width, size):
        x = np.random.randint(0, width - size) if width > size else 0
        y = np.random.randint(0, height - size) if height > size else 0
        return y, x


@PIPELINES.register()
class RandomFlip(Operator):
    """Horizontal flip with probability ``p``. Requires ``imgs`` (rewritten), ``data_format``. Adds ``flipped``."""

    requires = _SPATIAL
    adds = ("flipped",)

    def __init__(self, p: Probability = 0.5):
        self.p = p

    def __call__(self, results):
        imgs = _clip_array(results, "RandomFlip")
        flipped = bool(np.random.rand() < self.p)
        if flipped:
            results["imgs"] = np.ascontiguousarray(imgs[..., ::-1])
        results["flipped"] = flipped
        return results


def uniform_crop_offsets(height, width, size):
    """``(y, x)`` offsets of the three views: along the long side 0, 2*step, step with step = (long - size) // 2
    (left, right, centre; top, bottom, centre for portrait frames); 0 along the short side."""
    if height > width:
        step = (height - size) // 2
        return [(0, 0), (2 * step, 0), (step, 0)]
    step = (width - size) // 2
    return [(0, 0), (0, 2 * step), (0, step)]


@PIPELINES.register()
class UniformCrop(Operator):
    """Three ``target_size`` crops along the long side, concatenated on the time axis (``[3, 3*T, size, size]``).

    Requires ``imgs`` (rewritten), ``data_format``. Adds nothing.
    """

    requires = _SPATIAL

    def __init__(self, target_size: PositiveInt):
        self.target_size = target_size

    def infer_spec(self, spec):
        frames = spec.frames * 3 if spec.frames is not None else None
        return spec.replace(frames=frames, height=self.target_size, width=self.target_size)

    def __call__(self, results):
        imgs = _clip_array(results, "UniformCrop")
        size = self.target_size
        height, width = _check_fits(imgs, size, "UniformCrop")
        crops = [imgs[..., y:y + size, x:x + size] for y, x in uniform_crop_offsets(height, width, size)]
        results["imgs"] = np.concatenate(crops, axis=_time_axis(results))
        return results


@PIPELINES.register()
class CenterCrop(_SquareCrop):
    """The centre ``target_size`` square; offsets ``round((side - size) / 2)`` (Python rounding) or floor.

    Requires ``imgs`` (rewritten), ``data_format``. Adds nothing.
    """

    def __init__(self, target_size: PositiveInt, do_round: bool = True):
        self.target_size = target_size
        self.do_round = do_round

    def offset(self, height, width, size):
        if self.do_round:
            return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
        return (height - size) // 2, (width - size) // 2
