"""``Compose``: the operators of one ``PIPELINE.<mode>`` section, run in config order.

Building it checks the chain once: every key an operator ``requires`` must be added by an earlier one (or be
``filename``, which the dataset supplies), so a misordered pipeline fails at load time naming the operator,
its config position and the operator that would add the missing key.
"""

import inspect

from ...common.errors import ConfigError, UserError
from ..registry import PIPELINES
from .base import ClipSpec

SUPPLIED = ("filename",)  # the keys the caller puts in the results dict


class PipelineError(ConfigError):
    """A ``PIPELINE`` section cannot be built: bad step, bad operator argument, or misordered operators."""


class PipelineKeyError(ConfigError, KeyError):
    """An unknown operator name or operator key in a ``PIPELINE`` section."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def build_operator(name, params, where):
    """Instantiate operator ``name`` with ``params`` (a dict or None); ``where`` names the config section in errors."""
    try:
        cls = PIPELINES.get(name)
    except KeyError as err:
        raise PipelineKeyError(f"{where}: {err.args[0]}") from None
    params = dict(params or {})
    accepted = inspect.signature(cls.__init__).parameters
    unknown = [key for key in params if key not in accepted]
    if unknown:
        known = ", ".join(k for k in accepted if k != "self") or "(none)"
        raise PipelineKeyError(f"{where}: {name} has no key '{unknown[0]}'; its keys are: {known}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as err:
        if isinstance(err, UserError):
            raise
        raise PipelineError(f"{where}: {err}") from None


def _named_step(section, cfg):
    if not isinstance(cfg, dict) or "name" not in cfg:
        raise PipelineError(f"PIPELINE.{section} needs a 'name' entry (e.g. name: VideoDecoder), got {cfg!r}")
    params = {k: v for k, v in cfg.items() if k != "name"}
    return build_operator(cfg["name"], params, f"PIPELINE.{section}")


def _adders(key):
    """Names of the registered operators that add ``key``."""
    return [name for name in PIPELINES.names() if key in getattr(PIPELINES.get(name), "adds", ())]


class Compose:
    """Callable pipeline built from a config section with ``decode``, ``sample`` and a ``transform`` list.

    ``decode`` / ``sample`` are dicts with a ``name``; ``transform`` items are one-key dicts
    ``{OperatorName: {key: value} or None}``. Calling it on ``{'filename': path}`` returns the results dict
    whose ``imgs`` is the float32 clip ``[3, T * views, H, W]``; :meth:`output_shape` tells that shape before
    any video is read.
    """

    STEPS = ("decode", "sample", "transform")

    def __init__(self, pipeline_cfg, section="pipeline"):
        if not isinstance(pipeline_cfg, dict):
            raise PipelineError(f"PIPELINE.{section} must be a mapping with decode / sample / transform")
        unknown = [key for key in pipeline_cfg if key not in self.STEPS]
        if unknown:
            raise PipelineKeyError(f"PIPELINE.{section}: unknown step '{unknown[0]}'; steps are "
                                   f"{', '.join(self.STEPS)}")
        self.operators, places = [], []
        for step in ("decode", "sample"):
            if pipeline_cfg.get(step) is not None:
                self.operators.append(_named_step(f"{section}.{step}", pipeline_cfg[step]))
                places.append(f"PIPELINE.{section}.{step}")
        for position, item in enumerate(pipeline_cfg.get("transform") or []):
            where = f"PIPELINE.{section}.transform.{position}"
            if not isinstance(item, dict) or len(item) != 1:
                raise PipelineError(f"{where}: each transform is a one-key mapping like 'RandomFlip:', got {item!r}")
            (name, params), = item.items()
            self.operators.append(build_operator(name, params, where))
            places.append(where)
        self.spec = self._check(places)

    def _check(self, places):
        """Check every operator's ``requires`` against the keys added before it; returns the output ClipSpec."""
        available, spec = set(SUPPLIED), ClipSpec()
        for where, operator in zip(places, self.operators):
            name = type(operator).__name__
            for key in getattr(operator, "requires", ()):
                if key not in available:
                    adders = _adders(key)
                    hint = f"put {' or '.join(adders)} before it" if adders else "no operator adds it"
                    raise PipelineError(f"{where}: {name} needs results['{key}'], which no earlier operator of "
                                        f"this pipeline adds; {hint}")
            available.update(getattr(operator, "adds", ()))
            infer = getattr(operator, "infer_spec", None)
            if infer is not None:
                try:
                    spec = infer(spec)
                except ValueError as err:
                    raise PipelineError(f"{where}: {err}") from None
        return spec

    def output_shape(self):
        """The shape of ``results['imgs']`` this pipeline makes, e.g. ``(3, 24, 224, 224)``; ``None`` for a size
        that depends on the video (no crop after a resize, or none at all)."""
        return self.spec.shape()

    def __call__(self, results):
        try:
            for operator in self.operators:
                results = operator(results)
        finally:
            reader = results.pop("video_reader", None)  # left open only when a step failed before Sampler
            if reader is not None:
                reader.close()
        return results

    def __repr__(self):
        return "Compose(" + ", ".join(type(op).__name__ for op in self.operators) + ")"
