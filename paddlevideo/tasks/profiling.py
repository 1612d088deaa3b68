"""``main.py -p/--profiler_options``: Paddle's profiler over a range of training iterations, configured by
PaddleVideo's option string, e.g. ``"batch_range=[10,20];state=GPU;tracer_option=Default;profile_path=model.profile"``.

Keys (``key=value`` pairs separated by ``;``, spaces ignored; PaddleVideo's defaults):

- ``batch_range`` ``[10, 20]``: iterations ``[start, end)`` of the run (0-based, counted over all epochs) are
  profiled; at iteration ``end`` the profiler stops and prints its summary (operator detail, in ms).
- ``exit_on_finished`` ``True``: training then stops, like ``--max_iters end`` (no checkpoint of the unfinished
  epoch); ``False`` trains on.
- ``timer_only`` ``True``: only Paddle's step timer (throughput, reader and batch cost); ``False`` records
  operators too and writes a Chrome trace (``chrome://tracing``) into ``<output_dir>/profiler_log``.
- ``state``, ``sorted_key``, ``tracer_option``, ``profile_path``: accepted and not used, as in PaddleVideo (the
  device is the one training runs on; PaddleVideo writes its trace to ``./profiler_log`` whatever
  ``profile_path`` says, this project into the run's output folder).
"""

import os

from ..common.errors import ConfigError
from ..common.logger import get_logger

DEFAULTS = {"batch_range": [10, 20], "state": "All", "sorted_key": "total", "tracer_option": "Default",
            "profile_path": "/tmp/profile", "exit_on_finished": True, "timer_only": True}
_TRUE = ("yes", "true", "t", "1")


def parse_profiler_options(text):
    """PaddleVideo's option string -> ``{key: value}`` over :data:`DEFAULTS`.

    Raises:
        ConfigError: a pair that is not ``key=value``, an unknown key, or a ``batch_range`` that is not two
            integers ``0 <= start < end``.
    """
    options = dict(DEFAULTS)
    for pair in filter(None, text.replace(" ", "").split(";")):
        key, sep, value = pair.partition("=")
        if not sep or key not in DEFAULTS:
            raise ConfigError(f"-p/--profiler_options: '{pair}' is not one of {', '.join(k + '=...' for k in DEFAULTS)}")
        if key == "batch_range":
            try:
                start, end = (int(v) for v in value.strip("[]").split(","))
            except ValueError:
                start = end = -1
            if not 0 <= start < end:
                raise ConfigError(f"-p/--profiler_options: batch_range must be [start,end] with 0 <= start < end, "
                                  f"got {value}")
            options[key] = [start, end]
        elif key in ("exit_on_finished", "timer_only"):
            options[key] = value.lower() in _TRUE
        else:
            options[key] = value
    return options


class IterationProfiler:
    """Profiles training iterations ``[start, end)`` of ``batch_range``: call :meth:`step` once before each
    iteration and :meth:`close` when training ends (any way)."""

    def __init__(self, text, output_dir):
        self.options = parse_profiler_options(text)
        self.start, self.end = self.options["batch_range"]
        self.trace_dir = os.path.join(output_dir, "profiler_log")
        self._calls, self._profiler = 0, None

    @property
    def stop_after(self):
        """Iterations after which training stops (``exit_on_finished``), or None."""
        return self.end if self.options["exit_on_finished"] else None

    def step(self):
        """Before each training iteration: start the profiler on the first, advance it, stop it at ``end``."""
        import paddle.profiler as profiler

        if self._calls == 0:
            trace = None if self.options["timer_only"] else profiler.export_chrome_tracing(self.trace_dir)
            self._profiler = profiler.Profiler(scheduler=(self.start, self.end), on_trace_ready=trace,
                                               timer_only=self.options["timer_only"])
            self._profiler.start()
            get_logger().info("profiling training iterations %d..%d (-p/--profiler_options)", self.start, self.end - 1)
        elif self._profiler is not None:
            self._profiler.step()
        if self._calls == self.end:
            self.close()
        self._calls += 1

    def close(self):
        """Stop the profiler (if it runs) and print its summary."""
        if self._profiler is None:
            return
        prof, self._profiler = self._profiler, None
        prof.stop()
        prof.summary(op_detail=True, thread_sep=False, time_unit="ms")
        if not self.options["timer_only"]:
            get_logger().info("profiler trace written to %s", self.trace_dir)
