"""What every pipeline operator declares: the results keys it needs and adds, and the clip shape it makes.

An operator is a callable on the results dict. Its class lists ``requires`` (keys an earlier operator or the
dataset must have set) and ``adds`` (keys it sets); ``Compose`` checks the chain once when it is built, so a
misordered pipeline fails at load time with the operator named. ``infer_spec`` states, without reading a
video, how the operator changes the clip's :class:`ClipSpec`; ``Compose.output_shape()`` is the result.
"""

from dataclasses import dataclass, replace

@dataclass(frozen=True)
class ClipSpec:
    """The clip a pipeline makes, as far as it is known before any video is read (``None``: depends on it).

    Attributes:
        layout: axis order of ``results['imgs']``: ``thwc`` (decoded frames), ``cthw`` or ``tchw``.
        frames: length of the time axis, every view included.
        height, width: frame size in pixels.
        windows: temporal clips read per video (``VideoDecoder.num_clips``).
    """

    layout: str = "thwc"
    frames: int = None
    height: int = None
    width: int = None
    windows: int = 1

    def shape(self):
        """The clip's shape in its layout, e.g. ``(3, 8, 224, 224)`` for ``cthw``; ``None`` where unknown."""
        sizes = {"t": self.frames, "h": self.height, "w": self.width, "c": 3}
        return tuple(sizes[axis] for axis in self.layout)

    def replace(self, **changes):
        return replace(self, **changes)


class Operator:
    """Base of the pipeline operators (see the module docstring)."""

    requires = ()
    adds = ()

    def infer_spec(self, spec):
        """The :class:`ClipSpec` after this operator, given the one before it (default: unchanged)."""
        return spec

    def __call__(self, results):
        raise NotImplementedError
