"""The model thread: it loads the model, warms it up, then runs concurrent clips in batches.

One thread owns the predictor from its creation to the end (runtimes such as Paddle Inference are not made
for concurrent calls), so every model call of the service goes through :meth:`ModelWorker.submit`. Dynamic
batching: the thread takes the oldest waiting clip and adds clips that arrive until it has ``max_batch`` or
``max_wait_s`` have passed since that oldest clip arrived (clips that waited while the model was busy go
at once), stacks them to ``[N, 3, V*T, H, W]`` and runs the model once.

If loading, warming up or the loop itself fails, every waiting and later request fails with
:class:`~.errors.Unavailable` and ``on_fatal(err)`` is called once, so the service ends instead of
pretending to be alive.
"""

import collections
import queue
import threading
import time
from concurrent.futures import Future

import numpy as np

from ..common.errors import first_line
from ..common.logger import get_logger
from .errors import Unavailable
from .pool import STOP, take_waiting


class BatchResult:
    """What one clip gets back: ``logits [C]`` (float32), the ``batch_size`` it ran in, seconds spent
    ``queued`` (arrival to batch start) and in ``inference`` (the whole batch's model call)."""

    __slots__ = ("logits", "batch_size", "queued", "inference")

    def __init__(self, logits, batch_size, queued, inference):
        self.logits, self.batch_size, self.queued, self.inference = logits, batch_size, queued, inference


class _Item:
    __slots__ = ("clip", "future", "arrived")

    def __init__(self, clip):
        self.clip, self.future, self.arrived = clip, Future(), time.monotonic()


class ModelWorker:
    """Batches clips ``[3, V*T, H, W]`` (float32) through one predictor in one thread.

    Args:
        load: ``() -> predictor`` (``predictor(imgs [N, 3, V*T, H, W]) -> logits [N, C]``), called in the thread.
        max_batch: clips per model call, at most.
        max_wait_s: how long the oldest waiting clip may wait for others to join its batch.
        capacity: clips that may wait at once; :meth:`submit` refuses more (503).
        warmup: ``(predictor) -> None``, called in the thread after ``load`` and before :attr:`ready` is set.
        on_batch: ``(batch_size, seconds) -> None`` after each model call (metrics).
        on_fatal: ``(exception) -> None`` once, when the thread cannot go on.
    """

    def __init__(self, load, max_batch, max_wait_s, capacity, warmup=None, on_batch=None, on_fatal=None):
        self.load, self.warmup = load, warmup
        self.max_batch, self.max_wait_s = int(max_batch), float(max_wait_s)
        self.on_batch, self.on_fatal = on_batch, on_fatal
        self.queue = queue.Queue(maxsize=int(capacity))
        self.ready = threading.Event()
        self.failure = None
        self.predictor = None
        self._closing = False
        self._held = collections.deque()  # clips taken from the queue but not yet run (another shape)
        self._thread = threading.Thread(target=self._main, name="paddlevideo-model", daemon=True)
        # Recent seconds per clip, for Retry-After (how long until a slot frees).
        self._recent = collections.deque(maxlen=32)

    # ------------------------------------------------------------------ client side

    def start(self):
        self._thread.start()
        return self

    @property
    def depth(self):
        """Clips waiting for the model now."""
        return self.queue.qsize() + len(self._held)

    def seconds_per_clip(self):
        """Mean model seconds per clip over the recent batches (0.1 s before the first one)."""
        return (sum(self._recent) / len(self._recent)) if self._recent else 0.1

    def submit(self, clip, timeout=0.0, should_stop=None):
        """Queue one clip; returns a ``concurrent.futures.Future`` of its :class:`BatchResult`.

        With ``timeout`` 0 a full queue raises :class:`Unavailable` (503) at once; a positive ``timeout`` waits
        that long for room (checking ``should_stop()`` every 0.1 s; a job's windows wait like this).
        """
        self._check_alive()
        item = _Item(clip)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if timeout:
                    self.queue.put(item, timeout=max(0.0, min(0.1, deadline - time.monotonic())))
                else:
                    self.queue.put_nowait(item)
                break
            except queue.Full:
                self._check_alive()
                if not timeout or time.monotonic() >= deadline or (should_stop is not None and should_stop()):
                    raise Unavailable(f"the model queue is full ({self.queue.maxsize} clips waiting); retry later",
                                      retry_after=self.depth * self.seconds_per_clip()) from None
        if self._closing or self.failure is not None:  # closed meanwhile: the thread may never take it
            self._settle(item.future, Unavailable("the service is stopping"))
        return item.future

    def _check_alive(self):
        if self.failure is not None:
            raise Unavailable(f"the model failed and the service is stopping ({first_line(self.failure)})")
        if self._closing:
            raise Unavailable("the service is stopping", retry_after=5)

    def close(self, timeout=10.0):
        """Stop after the clips already queued; waits up to ``timeout`` seconds for the thread."""
        self._closing = True
        try:
            self.queue.put_nowait(STOP)
        except queue.Full:
            pass  # the thread sees _closing once the queue drains
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._fail_waiting(Unavailable("the service is stopping"))

    # ------------------------------------------------------------------ the thread

    def _main(self):
        log = get_logger()
        try:
            self.predictor = self.load()
            if self.warmup is not None:
                self.warmup(self.predictor)
            self.ready.set()
            self._loop()
        except BaseException as err:  # noqa: BLE001 - reported to the service, which stops
            self.failure = err
            self._fail_waiting(Unavailable(f"the model failed ({first_line(err)})"))
            log.error("model thread stopped: %s", first_line(err))
            try:
                if self.on_fatal is not None:
                    self.on_fatal(err)
            finally:
                self.ready.set()  # waiters wake up and see the failure
        finally:
            self._close_predictor()

    def _close_predictor(self):
        """A predictor that holds a resource of its own (the model process) lets it go with the thread."""
        close = getattr(self.predictor, "close", None)
        if close is not None:
            try:
                close()
            except Exception as err:  # noqa: BLE001 - stopping anyway
                get_logger().warning("closing the model failed: %s", first_line(err))

    def _next(self, timeout):
        if self._held:
            return self._held.popleft()
        if timeout is None:
            return self.queue.get()
        return self.queue.get(timeout=max(0.0, timeout))

    def _loop(self):
        while True:
            try:
                first = self._next(0.5)
            except queue.Empty:
                if self._closing:
                    return
                continue
            if first is STOP:
                self._drain_then_stop()
                return
            batch, stop = self._gather(first)
            self._run(batch)
            if stop:
                self._drain_then_stop()
                return

    def _gather(self, first):
        """``first`` and the clips of the same shape that join it in time; ``(batch, stop_seen)``."""
        batch, others, stop = [first], [], False
        deadline = first.arrived + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                item = self._next(deadline - time.monotonic()) if deadline > time.monotonic() else self._now()
            except queue.Empty:
                break
            if item is STOP:
                stop = True
                break
            (batch if item.clip.shape == first.clip.shape else others).append(item)
        self._held.extendleft(reversed(others))
        return batch, stop

    def _now(self):
        """A clip that is already waiting, without waiting for one (queue.Empty when none is)."""
        if self._held:
            return self._held.popleft()
        return self.queue.get_nowait()

    def _drain_then_stop(self):
        """Closing: answer the clips already queued, in batches, then return."""
        self._held.extend(take_waiting(self.queue))
        while self._held:
            batch, _ = self._gather(self._held.popleft())
            self._run(batch)

    def _run(self, batch):
        batch = [item for item in batch if item.future.set_running_or_notify_cancel()]  # skip timed-out ones
        if not batch:
            return
        start = time.monotonic()
        try:
            logits = np.asarray(self.predictor(np.stack([item.clip for item in batch])), np.float32)
            if logits.ndim != 2 or logits.shape[0] != len(batch):
                raise RuntimeError(f"the model returned shape {list(logits.shape)} for {len(batch)} clips")
        except Exception as err:  # noqa: BLE001 - this batch fails; the service goes on (unless the model is gone)
            get_logger().error("model call on %d clip(s) failed: %s", len(batch), first_line(err))
            if getattr(err, "fatal", False):  # the model process died: no later batch can run either
                for item in batch:
                    self._settle(item.future, Unavailable(f"the model failed ({first_line(err)})"))
                raise
            for item in batch:
                self._settle(item.future, err)
            return
        seconds = time.monotonic() - start
        self._recent.append(seconds / len(batch))
        from concurrent.futures import InvalidStateError

        for item, row in zip(batch, logits):
            try:
                item.future.set_result(BatchResult(row, len(batch), start - item.arrived, seconds))
            except InvalidStateError:  # failed by close() after its wait for this thread ran out
                pass
        if self.on_batch is not None:
            self.on_batch(len(batch), seconds)

    def _fail_waiting(self, err):
        while self._held:
            self._settle(self._held.popleft().future, err)
        for item in take_waiting(self.queue):
            self._settle(item.future, err)

    @staticmethod
    def _settle(future, err):
        """Fail ``future`` with ``err`` unless it is already answered (or being answered)."""
        from concurrent.futures import InvalidStateError

        if not future.done():
            try:
                future.set_exception(err)
            except InvalidStateError:  # answered meanwhile by the model thread
                pass


class QueuedPredictor:
    """A :class:`~paddlevideo.deploy.backends.base.Predictor`-shaped view of a :class:`ModelWorker` for work
    that calls a predictor itself (a timeline job): ``predictor(imgs [N, 3, V*T, H, W]) -> logits [N, C]``, each
    clip queued like a request's (so jobs share the model and its batches with requests), waiting for room
    instead of being refused. ``should_stop()`` (a job's) ends a wait early with :class:`Unavailable`."""

    def __init__(self, worker, should_stop=None, wait_s=600.0):
        self.worker, self.should_stop, self.wait_s = worker, should_stop, float(wait_s)
        predictor = worker.predictor
        self.backend = getattr(predictor, "backend", None)
        self.precision = getattr(predictor, "precision", "fp32")
        self.model_file = getattr(predictor, "model_file", None)

    def __call__(self, imgs):
        imgs = np.ascontiguousarray(imgs, np.float32)
        futures = [self.worker.submit(clip, timeout=self.wait_s, should_stop=self.should_stop) for clip in imgs]
        rows = []
        for future in futures:
            while True:
                try:
                    rows.append(future.result(timeout=0.1).logits)
                    break
                except TimeoutError:
                    if self.should_stop is not None and self.should_stop():
                        for other in futures:
                            other.cancel()
                        raise Unavailable("stopped while waiting for the model") from None
        return np.stack(rows)

    def describe(self):
        return f"{self.model_file} on {self.backend} in {self.precision} (through the service's model queue)"
