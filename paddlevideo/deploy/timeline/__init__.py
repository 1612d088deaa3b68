"""Timelines: what happens when in a long video or a live stream.

A source (file, camera, URL, pipe) is cut into overlapping windows, each scored as the test pipeline would
score it as a clip of its own; the result is a :class:`Timeline` of windows and merged segments, written as
``<stem>.timeline.csv``, ``<stem>.segments.json`` and ``<stem>.timeline.png``. Frames are decoded once, in
order, in a producer thread, and only the frames windows still need are kept (docs/timeline.md).
"""

from .output import CSV_HEADER, csv_header, read_timeline_csv, read_truth_segments, timeline_paths, write_timeline
from .scoring import Smoother, Timeline, merge_segments, predict_timeline
from .settings import TimelineSettings, WindowPlan, config_window_s
from .sources import is_live, open_source, source_kind, source_stem
from .stream import Window, WindowStream

__all__ = ["CSV_HEADER", "Smoother", "Timeline", "TimelineSettings", "Window", "WindowPlan", "WindowStream",
           "config_window_s", "csv_header", "is_live", "merge_segments", "open_source", "predict_timeline",
           "read_timeline_csv", "read_truth_segments", "source_kind", "source_stem", "timeline_paths", "write_timeline"]
