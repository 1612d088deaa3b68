"""``Compose``: the operators of one ``PIPELINE.<mode>`` section, run in config order."""

import inspect

from ..registry import PIPELINES


def build_operator(name, params, where):
    """Instantiate operator ``name`` with ``params`` (a dict or None); ``where`` names the config section in errors."""
    try:
        cls = PIPELINES.get(name)
    except KeyError as err:
        raise KeyError(f"{where}: {err.args[0]}") from None
    params = dict(params or {})
    accepted = inspect.signature(cls.__init__).parameters
    unknown = [key for key in params if key not in accepted]
    if unknown:
        known = ", ".join(k for k in accepted if k != "self") or "(none)"
        raise KeyError(f"{where}: {name} has no key '{unknown[0]}'; its keys are: {known}")
    return cls(**params)


def _named_step(section, cfg):
    if not isinstance(cfg, dict) or "name" not in cfg:
        raise ValueError(f"PIPELINE.{section} needs a 'name' entry (e.g. name: VideoDecoder), got {cfg!r}")
    params = {k: v for k, v in cfg.items() if k != "name"}
    return build_operator(cfg["name"], params, f"PIPELINE.{section}")


class Compose:
    """Callable pipeline built from a config section with ``decode``, ``sample`` and a ``transform`` list.

    ``decode`` / ``sample`` are dicts with a ``name``; ``transform`` items are one-key dicts
    ``{OperatorName: {key: value} or None}``. Calling it on ``{'filename': path}`` returns the results dict
    whose ``imgs`` is the float32 clip ``[3, T * views, H, W]``.
    """

    STEPS = ("decode", "sample", "transform")

    def __init__(self, pipeline_cfg, section="pipeline"):
        if not isinstance(pipeline_cfg, dict):
            raise ValueError(f"PIPELINE.{section} must be a mapping with decode / sample / transform")
        unknown = [key for key in pipeline_cfg if key not in self.STEPS]
        if unknown:
            raise KeyError(f"PIPELINE.{section}: unknown step '{unknown[0]}'; steps are {', '.join(self.STEPS)}")
        self.operators = []
        for step in ("decode", "sample"):
            if pipeline_cfg.get(step) is not None:
                self.operators.append(_named_step(f"{section}.{step}", pipeline_cfg[step]))
        for position, item in enumerate(pipeline_cfg.get("transform") or []):
            where = f"PIPELINE.{section}.transform.{position}"
            if not isinstance(item, dict) or len(item) != 1:
                raise ValueError(f"{where}: each transform is a one-key mapping like 'RandomFlip:', got {item!r}")
            (name, params), = item.items()
            self.operators.append(build_operator(name, params, where))

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
