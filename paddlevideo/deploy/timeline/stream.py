"""Windows of a source, preprocessed and in order, from a producer thread: :class:`WindowStream`.

The producer thread opens the source, decodes its frames once, in order (:mod:`.sources`), keeps only the
frames that windows still to come sample (:class:`WindowAssembler`), and runs each finished window through
the test pipeline's transforms (the crops, normalisation and views of ``PIPELINE.test``). Finished windows
go through a bounded queue to the caller, who batches and scores them meanwhile, so decoding overlaps
inference and memory does not grow with the video's length: at most the frames of the windows that overlap
the current frame, plus ``2 x batch_size`` preprocessed windows, are held.

Nothing hangs: the caller waits for the producer in short polls; it ends the run when ``should_stop()`` says
so, when the producer raises (the source broke), or when no frame has arrived for ``timeout_s`` (the source
stalled). A producer blocked inside a read it cannot leave is a daemon thread and is left behind.
"""

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from ...common.errors import InputError, first_line
from .cuts import CutDetector, crosses_cut
from .settings import TimelineSettings, WindowPlan
from .sources import FrameSource, open_source, source_kind

POLL_S = 0.05  # how often a waiting caller checks should_stop() and the stall clock
JOIN_S = 2.0  # how long closing waits for the producer to stop


@dataclass
class Window:
    """One window ready for the model.

    Attributes:
        index: window number k (0, 1, ...).
        start_frame, num_frames: the frames it covers, ``[start_frame, start_frame + num_frames)``.
        start_s, end_s: the same in seconds.
        imgs: float32 ``[3, V*T, H, W]``, the test pipeline's model input for this window.
        crosses_cut: its sampled frames lie on both sides of a detected hard cut (always False with ``cuts``
            ``off``).
    """

    index: int
    start_frame: int
    num_frames: float
    start_s: float
    end_s: float
    imgs: np.ndarray = None
    crosses_cut: bool = False

    def meta(self):
        """Everything but the pixels, as a dict."""
        return {"index": self.index, "start_frame": self.start_frame, "start_s": self.start_s, "end_s": self.end_s,
                "crosses_cut": self.crosses_cut}


class WindowAssembler:
    """Turns frames arriving in order into the uint8 frame stacks of finished windows (see :class:`WindowPlan`).

    ``wanted(index)`` tells the reader whether frame ``index`` is sampled by a window still to come;
    ``push(index, frame)`` returns the windows that frame finishes, as ``(k, start, frames [T', H, W, 3])``;
    ``finish()`` at the end of the stream returns the one window of a video shorter than a window.
    """

    def __init__(self, plan):
        self.plan = plan
        self.next_k = 0
        self.kept = {}  # frame index -> frame, only those a pending window samples
        self.last = None  # (index, frame): the newest converted frame (the end of a short video)
        self.frames_seen = 0
        # segment sampling (not linspace) of a short video may pick any frame: keep them all until window 0
        self._keep_head = not plan.sampler.linspace_sample

    def _used(self, index):
        k, plan = self.next_k, self.plan
        while plan.start(k) <= index:
            if plan.uses(k, index):
                return True
            k += 1
        return False

    def wanted(self, index):
        head = self.next_k == 0 and index < self.plan.span  # could be the last frame of a short video
        return head or self._used(index)

    def push(self, index, frame):
        plan = self.plan
        self.frames_seen = index + 1
        if frame is not None:
            if self._used(index) or (self._keep_head and self.next_k == 0):
                self.kept[index] = frame
            self.last = (index, frame)
        done = []
        while plan.start(self.next_k) + plan.span - 1 <= index:
            start = plan.start(self.next_k)
            frames = np.stack([self.kept[start + int(o)] for o in plan.offsets])
            done.append((self.next_k, start, frames))
            self.next_k += 1
            following = plan.start(self.next_k)
            for old in [i for i in self.kept if i < following]:
                del self.kept[old]
        return done

    def finish(self):
        """The window of a video shorter than one window (the whole video as one clip, the pipeline's
        clamping of indices past its end included), or nothing."""
        if self.next_k or not self.frames_seen or self.last is None:
            return []
        available = dict(self.kept)
        available[self.last[0]] = self.last[1]
        offsets = self.plan.clip_offsets(self.frames_seen)
        return [(0, 0, np.stack([available[int(o)] for o in offsets]))]


def preprocess(plan, frames, backend):
    """uint8 frames ``[T', H, W, 3]`` of one window -> the model input float32 ``[3, V*T, H, W]``: the test
    pipeline's operators after its ``Sampler``, on the results keys the decoder and sampler would have set."""
    results = {"imgs": frames, "frame_idx": plan.offsets, "frames_len": plan.span, "fps": plan.fps,
               "backend": backend, "window": plan.window}
    for operator in plan.transforms:
        results = operator(results)
    return results["imgs"]


class _End:
    """Queue markers from the producer."""

    def __init__(self, kind, payload=None):
        self.kind, self.payload = kind, payload


class WindowStream:
    """The windows of ``source`` (path, camera index, URL or pipe, or an already open
    :class:`~.sources.FrameSource`) for ``cfg``'s test pipeline, in order.

    Use as a context manager::

        with WindowStream(source, cfg, settings, should_stop) as stream:  # opens the source (or raises)
            for batch in stream.batches():                                # lists of Window
                ...
        stream.error      # None, or one line: the source broke or stalled (windows so far were delivered)

    Attributes (after opening): ``info`` (:class:`~.sources.SourceInfo`), ``settings`` (resolved),
    ``plan`` (:class:`~.settings.WindowPlan`), ``total`` (windows expected, None for live sources),
    ``frames_read``, ``error``, ``stopped`` (``should_stop`` ended it), ``cuts`` (frame indices that start a new
    shot, found so far; None with ``cuts`` ``off``).

    With ``cuts`` ``auto`` every frame is converted and fed to a :class:`~.cuts.CutDetector`, and a finished
    window waits until the detector has judged its last sampled frame (one frame later) to be marked
    ``crosses_cut``.

    ``should_stop``: a callable polled while waiting for frames and between batches (a
    ``threading.Event``'s ``is_set``); when it returns True the stream ends cleanly. A given
    :class:`~.sources.FrameSource` is read and closed by the stream.
    """

    def __init__(self, source, cfg, settings=None, should_stop=None):
        self.source, self.cfg, self.should_stop = source, cfg, should_stop
        self.settings = settings or TimelineSettings()
        decode = ((cfg.get("PIPELINE") or {}).get("test") or {}).get("decode") or {}
        self.backend = decode.get("backend", "decord")
        self.info = self.plan = self.total = self.error = None
        self.stopped = False
        self.frames_read = 0
        self._thread = None
        self._stop = threading.Event()
        self._queue = queue.Queue(maxsize=max(2, 2 * self.settings.batch_size))
        self._ended = False
        self._stalled = False  # the producer is stuck in a read: do not wait for it when closing
        self._detector = None

    # ------------------------------------------------------------------ producer thread

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self):
        try:
            reader = self.source if isinstance(self.source, FrameSource) else \
                open_source(self.source, self.backend, self.settings.timeout_s)
            reader.start()
        except BaseException as err:  # noqa: BLE001 - handed to the caller, who raises it
            self._put(_End("open_error", err))
            return
        plan, detector, pending = None, None, []  # pending: finished windows waiting for a cut verdict
        try:
            settings = self.settings.resolved(self.cfg, reader.info.fps)
            plan = WindowPlan(self.cfg, settings)
            if not self._put(_End("opened", (reader.info, settings, plan))):
                return
            assembler = WindowAssembler(plan)
            detector = self._detector = CutDetector() if settings.cuts == "auto" else None
            for index, frame in _read(reader, assembler.wanted, detector):
                self.frames_read = index + 1
                pending += [(k, start, plan.clip_frames, frames, plan.offsets)
                            for k, start, frames in assembler.push(index, frame)]
                if not self._release(plan, pending, detector) or self._stop.is_set():
                    return
            if detector is not None:
                detector.finish()
            pending += [(k, start, assembler.frames_seen, frames, plan.clip_offsets(assembler.frames_seen))
                        for k, start, frames in assembler.finish()]
            if self._release(plan, pending, detector):
                self._put(_End("end"))
        except BaseException as err:  # noqa: BLE001 - the source broke: the caller ends the run with one line
            if pending and isinstance(err, Exception):
                self._release_before_break(plan, pending, detector)
            self._put(_End("error", err))
        finally:
            reader.close()

    def _release_before_break(self, plan, pending, detector):
        """The source broke while windows waited for the verdict on their last frame (which no later frame will
        contradict now): hand them over. A second failure meanwhile drops them: the break is what to report."""
        try:
            detector.finish()
            self._release(plan, pending, detector)
        except Exception:  # noqa: BLE001 - see the docstring
            pass

    def _release(self, plan, pending, detector):
        """Preprocess and hand over the ``pending`` windows ``(k, start, length, frames, offsets)`` whose sampled
        frames the detector has judged (all of them without a detector); False when the stream was closed."""
        while pending:
            k, start, length, frames, offsets = pending[0]
            first, last = start + int(np.min(offsets)), start + int(np.max(offsets))
            if detector is not None and last > detector.decided:
                return True
            pending.pop(0)
            crossing = detector is not None and crosses_cut(detector.cuts, first, last)
            if not self._put(self._window(plan, k, start, length, frames, crossing)):
                return False
        return True

    def _window(self, plan, k, start, length, frames, crossing):
        start_s, end_s = plan.times(start, length)
        return Window(k, start, length, start_s, end_s, preprocess(plan, frames, self.backend), crossing)

    # ------------------------------------------------------------------ caller side

    def open(self):
        """Start the producer and wait until the source is open (at most ``timeout_s`` without a frame)."""
        self._thread = threading.Thread(target=self._produce, name="timeline-frames", daemon=True)
        self._thread.start()
        item = self._get(self.should_stop)
        if isinstance(item, _End) and item.kind == "opened":
            self.info, self.settings, self.plan = item.payload
            self.total = None if self.info.live else self.plan.count(self.info.num_frames)
            return self
        self._stalled = item is _STALL
        self.close()
        if isinstance(item, _End) and item.kind in ("open_error", "error"):
            raise item.payload
        if item is _STALL:
            raise InputError(f"{self.name}: no video arrived within {self.settings.timeout_s:g} s "
                             "(--timeout_s); is the source sending?")
        self.stopped = self._ended = True  # should_stop() while opening: no windows, no error
        return self

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Stop the producer (it leaves at its next frame or queue step) and wait briefly for it (not at all
        when it is stuck in a read: it stays behind as a daemon thread until the read returns)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(0.05 if self._stalled else JOIN_S)

    def _get(self, should_stop, block=True):
        """The next queue item, or _STOP / _STALL / None (nothing ready and ``block`` False)."""
        if not block:
            try:
                return self._queue.get_nowait()
            except queue.Empty:
                return None
        waited_from, progress = time.monotonic(), self.frames_read
        while True:
            if should_stop is not None and should_stop():
                return _STOP
            try:
                return self._queue.get(timeout=POLL_S)
            except queue.Empty:
                pass
            now = time.monotonic()
            if self.frames_read != progress:  # the producer is reading: not a stall, however slow
                waited_from, progress = now, self.frames_read
            elif now - waited_from > self.settings.timeout_s:
                return _STALL
            if not self._thread.is_alive() and self._queue.empty():
                return _End("error", RuntimeError("the frame reader stopped without a word"))

    def windows(self, block=True):
        """Yield :class:`Window` in order until the source ends, breaks, stalls or ``should_stop()``
        (``block=False``: only those ready now)."""
        while not self._ended:
            item = self._get(self.should_stop, block)
            if item is None:
                return
            if isinstance(item, Window):
                yield item
                continue
            self._ended = True
            self._finish(item)

    def batches(self, batch_size=None):
        """Yield lists of up to ``batch_size`` windows (default: the settings'). Files fill every batch;
        live sources score what has arrived rather than wait for a full batch."""
        size = batch_size or self.settings.batch_size
        live = self.info.live if self.info else self.live_source
        while not self._ended:
            batch = list(self._take(1, True))
            batch += list(self._take(size - len(batch), not live)) if batch else []
            if batch:
                yield batch
            if self.should_stop is not None and not self._ended and self.should_stop():
                self._ended = True
                self._finish(_STOP)

    @property
    def cuts(self):
        """Frame indices where a new shot starts, detected so far (None with ``cuts`` ``off``)."""
        return None if self._detector is None else list(self._detector.cuts)

    @property
    def name(self):
        """The source as the user gave it (for messages)."""
        return self.info.name if self.info is not None else str(self.source)

    @property
    def live_source(self):
        if isinstance(self.source, FrameSource):
            return self.source.info.live
        return source_kind(self.source) != "file"

    def _take(self, count, block):
        if count <= 0:
            return
        for window in self.windows(block):
            yield window
            count -= 1
            if count <= 0:
                return

    def _finish(self, item):
        """Record why the stream ended (``error`` / ``stopped``)."""
        self._stop.set()
        info, fps = self.info, (self.plan.fps if self.plan else None)
        at = f"{self.frames_read / fps:.3f} s (frame {self.frames_read})" if fps else f"frame {self.frames_read}"
        if item is _STOP:
            self.stopped = True
        elif item is _STALL:
            self._stalled = True
            self.error = (f"{self.name}: no frame for {self.settings.timeout_s:g} s (--timeout_s); "
                          f"stopped at {at}")
        elif item.kind == "error":
            self.error = f"{self.name}: reading failed at {at}: {first_line(item.payload)}"
        elif item.kind == "end" and info is not None and info.announced_frames:
            missing = info.announced_frames - self.frames_read
            if missing > max(3, round(0.5 * fps)):  # container counts may be off by a frame or two
                self.error = (f"{self.name}: the video breaks off at {at}; its header announces "
                              f"{info.announced_frames} frames ({info.announced_frames / fps:.3f} s)")


def _read(reader, wanted, detector):
    """``(index, frame)`` of ``reader.frames(wanted)``; with a cut ``detector``, every frame is also pushed to
    it (before its index is yielded)."""
    if detector is None:
        yield from reader.frames(wanted)
        return
    for index, frame, look in reader.frames_for_cuts(wanted):
        detector.push(index, look)
        yield index, frame


_STOP = object()
_STALL = object()
