"""Scoring a stream of windows: :func:`predict_timeline` and the :class:`Timeline` it returns.

Each window's outputs become class probabilities (:func:`..predict.class_probabilities`); with ``smooth = K``
the probabilities of K neighbouring windows (centred on the window; fewer at the ends) are averaged before the
top-k is taken, so a window is reported once the K // 2 windows after it are scored. A window that straddles a
detected hard cut (``crosses_cut``, :mod:`.cuts`) mixes two shots: it is left out of those averages (unless all K
windows cross one). Consecutive windows with the same top-1 merge into segments (:func:`merge_segments`).
"""

import bisect
import collections
from dataclasses import dataclass, field

import numpy as np

from ...common.errors import first_line
from ..predict import class_probabilities, outputs_probabilities, top_k
from .settings import TimelineSettings
from .stream import WindowStream


@dataclass
class Timeline:
    """The windows of one source, scored.

    Attributes:
        source: the source as given.
        windows: one dict per window, in order: ``index``, ``start_s``, ``end_s``, ``class_id``, ``class_name``
            (None without a label list), ``score`` (the top-1, smoothed when ``smooth`` > 1), ``class_ids``,
            ``class_names``, ``scores`` (top-k lists, best first), ``raw_class_id``, ``raw_score`` (the
            window's own top-1 before smoothing), ``crosses_cut`` (its frames straddle a detected cut).
        segments: :func:`merge_segments` of the windows.
        cuts: times in seconds (frame / fps) of the frames that start a new shot, as detected (None with
            ``cuts`` ``off``).
        settings: the resolved :class:`TimelineSettings`.
        plan: the window numbers actually used (frames per window and stride, fps), a dict.
        error: None, or one line: the source broke off, stalled or failed (the windows before are kept).
        stopped: ``should_stop()`` (or an interrupt) ended the run early.
        frames_read: frames decoded.
        kind: ``file``, ``camera``, ``url`` or ``pipe``.
    """

    source: str
    windows: list = field(default_factory=list)
    segments: list = field(default_factory=list)
    settings: TimelineSettings = None
    plan: dict = None
    error: str = None
    stopped: bool = False
    frames_read: int = 0
    kind: str = "file"
    cuts: list = None

    def summary(self):
        """Everything but the windows, as a JSON-ready dict (``segments.json``)."""
        settings = self.settings.to_dict() if self.settings else None
        return {"source": str(self.source), "kind": self.kind, "settings": settings, "plan": self.plan,
                "num_windows": len(self.windows), "frames_read": self.frames_read, "complete": self.complete,
                "error": self.error, "stopped": self.stopped, "cuts": self.cuts, "segments": self.segments}

    @property
    def complete(self):
        """True when the whole source was scored (no error, not stopped)."""
        return self.error is None and not self.stopped


class Smoother:
    """Centred moving average of class probabilities over ``k`` windows (``k`` = 1: none).

    ``add(item, probs, crosses_cut)`` returns the ``(item, smoothed probs)`` pairs that are final now (window i
    is final once window ``i + k // 2`` has arrived); ``flush()`` the rest at the end of the stream. Windows
    added with ``crosses_cut`` True are left out of every average that has another window to use.
    """

    def __init__(self, k):
        self.before, self.after = (k - 1) // 2, k // 2
        # (position, item, probs, crosses_cut), kept while a later window still needs it
        self.items = collections.deque()
        self.count = 0  # windows added
        self.emitted = 0  # windows returned

    def _average(self, position):
        rows = [(probs, crossing) for p, _, probs, crossing in self.items
                if position - self.before <= p <= position + self.after]
        # a window across a cut scores a mix of two shots: evidence about neither, unless nothing else is near
        clean = [probs for probs, crossing in rows if not crossing]
        return np.mean(clean or [probs for probs, _ in rows], axis=0)

    def _emit(self, upto):
        out = []
        while self.emitted < upto:
            item = next(entry[1] for entry in self.items if entry[0] == self.emitted)
            out.append((item, self._average(self.emitted)))
            self.emitted += 1
        while self.items and self.items[0][0] < self.emitted - self.before:
            self.items.popleft()
        return out

    def add(self, item, probs, crosses_cut=False):
        self.items.append((self.count, item, np.asarray(probs, np.float64), bool(crosses_cut)))
        self.count += 1
        return self._emit(max(0, self.count - self.after))

    def flush(self):
        return self._emit(self.count)


def window_record(meta, raw_probs, probs, k, label_names):
    """The window dict of :class:`Timeline` from a window's ``meta`` and its (smoothed) probabilities."""
    ids, scores = top_k(np.asarray(probs), k)
    names = [label_names.get(i, str(i)) for i in ids] if label_names else None
    raw = int(np.argmax(raw_probs))
    record = dict(meta)
    record.update({"class_id": ids[0], "class_name": names[0] if names else None, "score": scores[0],
                   "class_ids": ids, "class_names": names, "scores": scores,
                   "raw_class_id": raw, "raw_score": float(raw_probs[raw])})
    return record


def merge_segments(windows, min_windows=1, cuts=None):
    """Consecutive windows with the same ``class_id`` -> segments ``{start_s, end_s, class_id, class_name,
    score (mean top-1 score of its windows), num_windows}``.

    A run of fewer than ``min_windows`` windows between two others is not a segment: between two runs of one
    class it joins them; between two classes its first half goes to the segment before, the rest to the one
    after (shortest runs first). A single window read wrong inside a long segment (a clip boundary the model
    never saw, a camera cut) then neither splits it nor moves a boundary by more than half its length.

    Windows overlap, so a boundary between two segments is put halfway between the centres of the last
    window of one and the first window of the next (with half-window strides, within half a stride of a
    change that the windows see); the first segment starts where the first window starts, the last ends
    where the last window ends: the segments tile the scored span without overlapping.

    ``cuts``: times (seconds, ascending) of detected hard cuts. In edited footage a change of action comes with
    a cut, and the windows place it only to within about half a window; so a boundary moves onto a cut within
    half a window of it when the shot before that cut is labelled as the segment before and the shot after it as
    the segment after (:func:`_shot_label`: by their windows that cross no cut), the one nearest the halfway
    point if several qualify. A cut between two shots of one label is never taken, nor one next to a shot that
    no window sees whole.
    """
    groups = _absorb_short_runs(_runs(windows), min_windows)
    shots = _Shots(windows, cuts) if cuts else None
    segments = []
    for position, group in enumerate(groups):
        if position == 0:
            start = group[0]["start_s"]
        else:
            start = _boundary(groups[position - 1], group, shots)
        label = _majority(group)
        segments.append({"start_s": start, "end_s": group[-1]["end_s"], "class_id": label["class_id"],
                         "class_name": label.get("class_name"),
                         "score": float(np.mean([w["score"] for w in group if w["class_id"] == label["class_id"]])),
                         "num_windows": len(group)})
        if position:
            segments[-2]["end_s"] = start
    return segments


def _majority(group):
    """The window whose class most windows of ``group`` have (the first such): the segment's label."""
    counts = {}
    for window in group:
        counts[window["class_id"]] = counts.get(window["class_id"], 0) + 1
    best = max(counts.values())
    return next(window for window in group if counts[window["class_id"]] == best)


def _runs(windows):
    groups = []
    for window in windows:
        if groups and groups[-1][-1]["class_id"] == window["class_id"]:
            groups[-1].append(window)
        else:
            groups.append([window])
    return groups


def _absorb_short_runs(groups, min_windows):
    """Runs of windows with the short inner ones given to their neighbours (see :func:`merge_segments`)."""
    groups = [list(group) for group in groups]
    while len(groups) > 2:
        inner = [i for i in range(1, len(groups) - 1) if len(groups[i]) < min_windows]
        if not inner:
            break
        i = min(inner, key=lambda j: (len(groups[j]), j))
        before, run, after = groups[i - 1], groups[i], groups[i + 1]
        if before[-1]["class_id"] == after[0]["class_id"]:
            groups[i - 1:i + 2] = [before + run + after]
        else:
            half = len(run) // 2
            groups[i - 1:i + 2] = [before + run[:half], run[half:] + after]
    return groups


def _centre(window):
    return (window["start_s"] + window["end_s"]) / 2.0


def _boundary(before, after, shots):
    """Where the segment of windows ``after`` begins after the one of windows ``before`` (seconds): halfway
    between the centres of the last window of one and the first of the other, or a cut of ``shots`` (a
    :class:`_Shots`, or None) as :func:`merge_segments` says."""
    last, first = before[-1], after[0]
    halfway = (_centre(last) + _centre(first)) / 2.0
    if shots is None:
        return halfway
    labels = (_majority(before)["class_id"], _majority(after)["class_id"])
    reach = (last["end_s"] - last["start_s"]) / 2.0  # half a window
    fitting = [cut for cut in shots.near(halfway, reach) if shots.labels_around(cut) == labels]
    return shots.times[min(fitting, key=lambda cut: abs(shots.times[cut] - halfway))] if fitting else halfway


class _Shots:
    """The shots between detected cuts and what the windows that cross no cut say about each.

    ``times``: the cut times (seconds, ascending); ``near(t, reach)``: the indices of the cuts within ``reach``
    of ``t``; ``labels_around(i)``: ``(label of the shot before cut i, label of the shot after it)``."""

    def __init__(self, windows, cuts):
        self.times = list(cuts)
        clean = sorted((_centre(w), w["class_id"]) for w in windows if not w.get("crosses_cut"))
        self._centres = [centre for centre, _ in clean]
        self._labels = [label for _, label in clean]

    def near(self, time, reach):
        return range(bisect.bisect_left(self.times, time - reach - 1e-9),
                     bisect.bisect_right(self.times, time + reach + 1e-9))

    def labels_around(self, index):
        start = self.times[index - 1] if index else float("-inf")
        end = self.times[index + 1] if index + 1 < len(self.times) else float("inf")
        return (_shot_label(self._centres, self._labels, start, self.times[index]),
                _shot_label(self._centres, self._labels, self.times[index], end))


def _shot_label(centres, labels, start, end):
    """The class most windows centred in ``[start, end)`` have (``centres`` ascending, seconds; ``labels`` their
    classes), None without such windows or when two classes tie."""
    counts = collections.Counter(labels[bisect.bisect_left(centres, start):bisect.bisect_left(centres, end)])
    ranked = counts.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def _logits(predictor, imgs):
    """Call a deploy Predictor or any callable ``imgs [N, 3, V*T, H, W] -> logits [N, C]``."""
    out = predictor(imgs)
    if hasattr(out, "numpy"):
        out = out.numpy()
    out = np.asarray(out, np.float32)
    if out.ndim != 2 or out.shape[0] != len(imgs):
        raise ValueError(f"the model returned shape {list(out.shape)} for {len(imgs)} windows; expected "
                         f"[{len(imgs)}, num_classes]")
    return out


class _Builder:
    """Collects the scored windows of one run (smoothing, callbacks) and makes the :class:`Timeline`."""

    def __init__(self, source, settings, label_names, on_window):
        self.timeline = Timeline(source=str(source), settings=settings)
        self.smoother = Smoother(settings.smooth)
        self.label_names, self.on_window = label_names, on_window
        self.total = None

    def opened(self, stream):
        self.timeline.settings, self.timeline.kind = stream.settings, stream.info.kind
        self.timeline.source = stream.info.name
        self.timeline.plan = stream.plan.describe()
        self.smoother = Smoother(stream.settings.smooth)
        self.total = stream.total

    def add(self, meta, probs):
        self._emit(self.smoother.add((meta, probs), probs, meta.get("crosses_cut", False)))

    def _emit(self, pairs):
        k = self.timeline.settings.top_k
        for (meta, raw), smoothed in pairs:
            record = window_record(meta, raw, smoothed, k, self.label_names)
            self.timeline.windows.append(record)
            if self.on_window is not None:
                self.on_window(record, len(self.timeline.windows), self.total)

    def finish(self, stream, error=None, stopped=False):
        self._emit(self.smoother.flush())
        timeline = self.timeline
        settings = timeline.settings
        if stream is not None and stream.cuts is not None:
            timeline.cuts = [frame / stream.plan.fps for frame in stream.cuts]
        timeline.segments = merge_segments(timeline.windows, settings.min_segment_windows() if settings else 1,
                                           timeline.cuts)
        if stream is not None:
            timeline.frames_read = stream.frames_read
            timeline.error = error or stream.error
            timeline.stopped = stopped or stream.stopped
        else:
            timeline.error, timeline.stopped = error, stopped
        return timeline


def predict_timeline(source, cfg, predictor, settings=None, label_names=None, on_window=None, should_stop=None):
    """Score ``source`` window by window; returns a :class:`Timeline`.

    Args:
        source: a video path, a camera index (``0``), a URL (``rtsp://``, ``http://``), a pipe (``-``,
            ``/dev/stdin``, a FIFO), or an open :class:`~.sources.FrameSource`.
        cfg: the model's config; its ``PIPELINE.test`` samples and transforms each window.
        predictor: a deploy :class:`~paddlevideo.deploy.backends.base.Predictor`, or any callable
            ``imgs [N, 3, V*T, H, W] float32 -> logits [N, num_classes]``.
        settings: :class:`TimelineSettings` (defaults filled in for ``cfg`` and the source's frame rate).
        label_names: ``{class id: name}`` or None.
        on_window: ``on_window(window_dict, done, total_or_None)``, called from the calling thread as each
            window is final (``smooth // 2`` windows later with smoothing).
        should_stop: polled between batches and while waiting for frames (e.g. a ``threading.Event``'s
            ``is_set``); True ends the run cleanly with the windows so far (``Timeline.stopped``).

    Raises:
        InputError: the source cannot be opened, or sends nothing within ``timeout_s``.
        ConfigError: an impossible setting, or a config without a ``VideoDecoder`` + ``Sampler`` test pipeline.
        KeyboardInterrupt: re-raised with the windows scored so far as its ``timeline`` attribute.
    """
    settings = settings or TimelineSettings()
    builder = _Builder(source, settings, label_names, on_window)
    probabilities = outputs_probabilities(cfg)
    stream = WindowStream(source, cfg, settings, should_stop)
    error = None
    try:
        with stream:
            if stream.plan is not None:
                builder.opened(stream)
            for batch in stream.batches():
                imgs = np.stack([window.imgs for window in batch])
                try:
                    probs = class_probabilities(_logits(predictor, imgs), probabilities)
                except Exception as err:  # the model rejected the input: keep what was scored, say why
                    error = f"{stream.name}: the model failed on the window at {batch[0].start_s:.3f} s ({first_line(err)})"
                    break
                for window, row in zip(batch, probs):
                    builder.add(window.meta(), row)
    except KeyboardInterrupt as interrupt:
        interrupt.timeline = builder.finish(stream if stream.plan is not None else None, stopped=True)
        raise
    return builder.finish(stream, error=error)
