"""One clip request end to end: admission, decoding with the config's test pipeline, the batched model, top-k.

The answer has the keys ``tools/predict.py --output json`` prints (``file``, ``class_ids``, ``class_names``,
``scores``: the top-k softmax probabilities, best first), computed by the same functions
(:func:`paddlevideo.deploy.predict.softmax` / :func:`~paddlevideo.deploy.predict.top_k`) from the same
pipeline and model, plus ``batch_size`` (clips in the model call it rode in) and ``timings_ms``.

Bounded at every step: at most ``queue_size`` requests are admitted at once (more get 503 with
``Retry-After``), ``decode_workers`` threads decode, one model thread batches; a request unanswered after
``timeout_s`` gets 504. A request's slot is given back, and its upload deleted, only once every piece of
work started for it has ended (a decode cannot be interrupted, so a timed-out request keeps its slot until its
decode returns): memory and temporary files stay bounded even when clients give up.
"""

import asyncio
import threading
import time

import numpy as np

from ..deploy.predict import class_probabilities, outputs_probabilities, top_k
from ..common.errors import first_line
from ..common.logger import get_logger
from .batching import ModelWorker
from .errors import ClientError, Unavailable, decode_failure
from .pool import DaemonPool


class Ticket:
    """An admitted request: ``track`` the background futures started for it; when the request has ended
    (:meth:`close`) and all of them are done, the ``cleanups`` run (delete the upload, give the slot back)."""

    def __init__(self, cleanups):
        self._pending, self._lock, self.cleanups = 1, threading.Lock(), list(cleanups)

    def track(self, future):
        with self._lock:
            self._pending += 1
        future.add_done_callback(lambda _: self._release())
        return future

    def close(self):
        self._release()

    def _release(self):
        with self._lock:
            self._pending -= 1
            last = self._pending == 0
        if last:
            for cleanup in reversed(self.cleanups):
                try:
                    cleanup()
                except Exception as err:  # noqa: BLE001 - a cleanup failure must not hide the others
                    get_logger().warning("cleanup after a request failed: %s", first_line(err))


class ClipService:
    """Clips in, answers out. ``load_predictor() -> Predictor`` is called in the model thread;
    ``explainer`` (an :class:`~.explain.AttentionExplainer`, optional) adds the attention pictures;
    ``on_fatal(err)`` is called when the model cannot be loaded or checked (the service must stop)."""

    def __init__(self, settings, cfg, pipeline, label_names, load_predictor, input_shape, explainer=None,
                 metrics=None, on_fatal=None):
        self.settings, self.cfg, self.pipeline, self.label_names = settings, cfg, pipeline, label_names
        self.input_shape, self.explainer, self.metrics = input_shape, explainer, metrics
        self.on_fatal = on_fatal
        self.worker = ModelWorker(load_predictor, settings.max_batch, settings.max_wait_s,
                                  capacity=settings.queue_size + settings.max_jobs * settings.max_batch,
                                  warmup=self._warmup, on_batch=metrics.observe_batch if metrics else None,
                                  on_fatal=self._fatal)
        self.decoders = DaemonPool(settings.decode_workers, "paddlevideo-decode")
        self.explain_pool = DaemonPool(1, "paddlevideo-explain") if explainer else None
        self.explainer_ready = threading.Event()
        self._check_clip = None
        self._in_flight, self._lock = 0, threading.Lock()
        self.stopping = False
        self.failure = None

    # ------------------------------------------------------------------ life cycle

    def start(self):
        self.worker.start()
        if self.explainer is not None:
            self.explain_pool.submit(self._load_explainer)
        return self

    @property
    def ready(self):
        """Loaded, warmed up (and the attention model checked against the exported one), not stopping."""
        return (self.worker.ready.is_set() and self.worker.failure is None and self.failure is None
                and (self.explainer is None or self.explainer_ready.is_set()) and not self.stopping)

    @property
    def attention(self):
        return self.explainer is not None

    def close(self, timeout=10.0):
        """Stop: answer what the model thread holds, cancel decodes not started, wait up to ``timeout`` s."""
        import time

        deadline = time.monotonic() + timeout
        self.stopping = True
        self.worker.close(timeout)
        for pool in (self.decoders, self.explain_pool):
            if pool is not None:
                pool.shutdown(cancel_futures=True)
                pool.join(max(0.0, deadline - time.monotonic()))

    def _fatal(self, err):
        if self.failure is None:
            self.failure = err
            if self.on_fatal is not None:
                self.on_fatal(err)

    def _warmup(self, predictor):
        """Two model calls (1 clip and ``max_batch`` clips) before the service says it is ready, so the first
        requests do not pay for the runtime's first-call set-up."""
        if any(d is None for d in self.input_shape[1:]):
            get_logger().warning("the clip shape depends on the video (%s): no warm-up", self.input_shape)
            return
        rng = np.random.RandomState(0)
        clip_shape = [int(d) for d in self.input_shape[1:]]
        for size in sorted({1, self.settings.max_batch}):
            imgs = rng.uniform(-2, 2, [size, *clip_shape]).astype(np.float32)
            logits = np.asarray(predictor(imgs))
            if logits.shape[0] != size or not np.all(np.isfinite(logits)):
                raise Unavailable(f"the model's warm-up gave logits of shape {list(logits.shape)} for {size} clips "
                                  "(or non-finite values)")
        self._check_clip = (imgs[:1], logits[:1])

    def _load_explainer(self):
        try:
            self.explainer.load()
            self.worker.ready.wait()
            if self.worker.failure is not None:
                return
            if self._check_clip is not None:
                imgs, logits = self._check_clip
                self.explainer.check_same_model(imgs, logits, getattr(self.worker.predictor, "precision", "fp32"))
            self.explainer_ready.set()
        except BaseException as err:  # noqa: BLE001 - the service cannot keep its promise: it stops
            get_logger().error("the attention model (-w) cannot be used: %s", first_line(err))
            self._fatal(err)

    # ------------------------------------------------------------------ admission

    @property
    def in_flight(self):
        return self._in_flight

    def retry_after(self):
        """Seconds until a slot is likely free: the work held, at the recent model speed."""
        return max(1.0, self._in_flight * self.worker.seconds_per_clip() / max(1, self.settings.max_batch))

    def check_ready(self):
        if self.stopping:
            raise Unavailable("the service is stopping", retry_after=5)
        if self.failure is not None or self.worker.failure is not None:
            raise Unavailable(f"the model failed ({first_line(self.failure or self.worker.failure)})")
        if not self.ready:
            raise Unavailable("the model is still loading; retry shortly (GET /health says when it is ready)",
                              retry_after=2)

    def admit(self):
        """A :class:`Ticket` for one clip request, or :class:`Unavailable` (503) when ``queue_size`` are held."""
        self.check_ready()
        with self._lock:
            if self._in_flight >= self.settings.queue_size:
                raise Unavailable(f"busy: {self._in_flight} requests held (--queue_size {self.settings.queue_size}); "
                                  "retry later", retry_after=self.retry_after())
            self._in_flight += 1
        return Ticket([self._leave])

    def _leave(self):
        with self._lock:
            self._in_flight -= 1

    # ------------------------------------------------------------------ one clip

    def _decode(self, path):
        start = time.perf_counter()
        results = self.pipeline({"filename": path})
        return results, time.perf_counter() - start

    async def predict(self, ticket, upload, started, top_k_count, attention=False):
        """The answer for one admitted upload (see the module docstring); ``started`` is the request's
        ``time.monotonic()`` at arrival: the timeout counts from it."""
        loop = asyncio.get_running_loop()
        deadline = started + self.settings.timeout_s

        async def wait(future, what):
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                return await asyncio.wait_for(asyncio.wrap_future(future, loop=loop), remaining)
            except asyncio.TimeoutError:
                future.cancel()  # a clip still waiting for the model is skipped
                raise Unavailable(f"no answer within {self.settings.timeout_s:g} s (--timeout_s) while {what}; "
                                  "the service is overloaded or the video is very long", status=504) from None

        try:
            results, decode_s = await wait(ticket.track(self.decoders.submit(self._decode, upload.path)),
                                           "decoding the video")
        except (Unavailable, asyncio.CancelledError):
            raise
        except Exception as err:  # the decoders' VideoOpenError / VideoDecodeError, a pipeline that fails
            raise decode_failure(err, upload.filename, upload.path) from None
        clip = results["imgs"]
        expected = self.input_shape[1:]
        if list(clip.shape) != [d if d is not None else s for d, s in zip(expected, clip.shape)]:
            raise ClientError(f"upload '{upload.filename}' gives a clip of shape {list(clip.shape)}, the model takes "
                              f"{expected}", 422)
        batch = await wait(ticket.track(self.worker.submit(clip)), "waiting for the model")
        probs = class_probabilities(batch.logits[None], outputs_probabilities(self.cfg))[0]
        ids, scores = top_k(probs, top_k_count)
        answer = {"file": upload.filename, "class_ids": ids,
                  "class_names": [self.label_names.get(i, str(i)) for i in ids] if self.label_names else None,
                  "scores": scores, "batch_size": batch.batch_size,
                  "timings_ms": {"decode": 1000 * decode_s, "queue": 1000 * batch.queued,
                                 "inference": 1000 * batch.inference}}
        if attention and self.explainer is not None:
            names = answer["class_names"] or [str(i) for i in ids]
            title = f"{upload.filename}: " + ", ".join(f"{n} {p:.2f}" for n, p in zip(names[:3], scores[:3]))
            try:
                explained = await wait(ticket.track(self.explain_pool.submit(self.explainer.explain, results, title)),
                                       "drawing the attention")
            except Unavailable:
                raise
            except Exception as err:  # noqa: BLE001 - the answer stands; the pictures are missing, and it says why
                get_logger().warning("attention pictures for %s failed: %s", upload.filename, first_line(err))
                answer["attention_error"] = first_line(err)
                return answer
            answer["attention"] = {"grid_png": f"/results/{explained['token']}/attention_grid.png",
                                   "gif": f"/results/{explained['token']}/attention.gif",
                                   "temporal_share": explained["temporal_share"],
                                   "frame_indices": explained["frame_indices"]}
        return answer
