"""``POST /timeline``: a long video scored window by window (:mod:`paddlevideo.deploy.timeline`) as a job.

Every window goes through the service's model queue (:class:`~.batching.QueuedPredictor`), so a timeline
shares the model and its batches with clip requests instead of running a second copy. Each window is
published as it is final (the page draws the ribbon from them, ``GET /jobs/<id>?since=N``); the job's result
is the timeline's summary: its segments, settings, window plan, and whether it is complete. Only the
service's own temporary copy of the upload is ever opened (a file), never a camera, URL or pipe.
"""

import importlib.util

MODULE = "paddlevideo.deploy.timeline"
REASON = "needs paddlevideo.deploy.timeline (issue 22)"
FIELDS = ("window_s", "stride_s", "smooth", "top_k", "cuts")  # the settings a request may choose


def available():
    """True when the timeline module is installed with this package."""
    try:
        return importlib.util.find_spec(MODULE) is not None
    except ImportError:
        return False


def plain(value):
    """A JSON-ready copy: numpy numbers and arrays, tuples and dataclasses become plain Python."""
    import dataclasses

    import numpy as np

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def settings_from_request(values, batch_size):
    """:class:`~paddlevideo.deploy.timeline.TimelineSettings` from the request's query ``values`` (None keeps
    the config's default), ``batch_size`` windows per model call; checked now, so a bad value is a 400 before
    the upload is read."""
    from importlib import import_module

    from ..common.errors import ConfigError
    from .errors import ClientError

    settings_cls = import_module(MODULE).TimelineSettings
    chosen = {k: v for k, v in values.items() if k in FIELDS and v is not None}
    try:
        return settings_cls(batch_size=int(batch_size), **chosen)
    except (ConfigError, TypeError, ValueError) as err:
        raise ClientError(str(err).replace("--", ""), 400) from None


def timeline_work(path, filename, cfg, worker, label_names, settings):
    """The job function ``work(job) -> result`` that scores the video at ``path`` (the upload's copy).

    Windows are published with ``job.progress`` as they are final; a timeline that breaks off (a truncated
    video, a stall) fails the job with its one-line reason and keeps the windows and segments scored before.
    """
    from importlib import import_module

    from ..common.errors import UserError, first_line
    from .batching import QueuedPredictor
    from .errors import hide_path
    from .jobs import JobFailed

    timeline_module = import_module(MODULE)

    def work(job):
        predictor = QueuedPredictor(worker, should_stop=job.should_stop)

        def on_window(window, done, total):
            job.progress(done=done, total=total, item=plain(window))

        try:
            timeline = timeline_module.predict_timeline(path, cfg, predictor, settings=settings,
                                                        label_names=label_names, on_window=on_window,
                                                        should_stop=job.should_stop)
        except UserError as err:  # the upload cannot be opened, a setting does not fit this video
            raise JobFailed(f"upload '{filename}': {hide_path(first_line(err), path, filename)}") from None
        result = plain(timeline.summary())
        result["source"] = filename  # the client's name, not the server's temporary path
        if timeline.error and not timeline.stopped:
            raise JobFailed(f"upload '{filename}': {hide_path(first_line(timeline.error), path, filename)}", result)
        return result

    return work
