"""``POST /timeline``: a long video scored window by window (:mod:`paddlevideo.deploy.timeline`) as a job.

Every window goes through the service's model queue (:class:`~.batching.QueuedPredictor`), so a timeline
shares the model and its batches with clip requests instead of running a second copy. Each window is
published as it is scored (the page draws the ribbon from them); the job's result is the whole timeline:
its windows, its segments (runs of one class) and the settings it used.
"""

import importlib.util

MODULE = "paddlevideo.deploy.timeline"
REASON = "needs paddlevideo.deploy.timeline (issue 22)"
FIELDS = ("window_s", "stride_s", "smooth", "top_k")  # the settings a request may choose


def available():
    """True when the timeline module is installed with this package."""
    try:
        return importlib.util.find_spec(MODULE) is not None
    except ImportError:
        return False


def _plain(value):
    """JSON-friendly copy (numpy numbers, tuples and dataclasses become plain Python)."""
    import dataclasses

    import numpy as np

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def settings_from_request(overrides):
    """``TimelineSettings`` from the request's query values (None keeps the config's default); checked now,
    so a bad value is a 400 before the job starts."""
    from importlib import import_module

    from .errors import ClientError
    from ..utils.errors import ConfigError

    TimelineSettings = import_module(MODULE).TimelineSettings
    try:
        return TimelineSettings(**{k: v for k, v in overrides.items() if v is not None})
    except (ConfigError, TypeError, ValueError) as err:
        raise ClientError(str(err).replace("--", ""), 400) from None


def timeline_work(path, cfg, worker, label_names, settings):
    """The job function: ``work(job) -> result`` scoring the video at ``path``."""
    from importlib import import_module

    from .batching import QueuedPredictor

    timeline_module = import_module(MODULE)

    def work(job):
        predictor = QueuedPredictor(worker, should_stop=job.should_stop)

        def on_window(window, *rest, **extra):
            # the window as published; a total, if the timeline knows it, comes as 'total' or as (done, total)
            total = extra.get("total")
            if total is None and len(rest) >= 2:
                total = rest[1]
            job.progress(done=len(job.items) + 1, total=total, item=_plain(window))

        timeline = timeline_module.predict_timeline(path, cfg, predictor, settings=settings, label_names=label_names,
                                                    on_window=on_window, should_stop=job.should_stop)
        if getattr(timeline, "error", None):
            from ..utils.errors import InputError

            raise InputError(str(timeline.error))
        return {"windows": _plain(list(timeline.windows)), "segments": _plain(list(timeline.segments)),
                "settings": _plain(timeline.settings)}

    return work
