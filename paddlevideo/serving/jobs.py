"""Long work as jobs: accepted at once (202), run in the background, read with ``GET /jobs/<id>``.

A job goes ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``cancelled``. While it runs it publishes its
progress (``done`` / ``total`` units, e.g. windows of a timeline) and its partial results (``items``, in
order, so a page can draw them as they come; ``GET /jobs/<id>?since=N`` returns only the items from N on).
Bounded: at most ``max_running`` jobs run and as many more wait; a further one is refused (503). Finished
jobs are kept for ``ttl_s`` seconds, at most ``max_kept`` of them (the oldest go first). Stopping the service
asks every job to stop (``job.should_stop()`` turns true) and waits a bounded time.
"""

import secrets
import threading
import time
from concurrent.futures import wait

from ..common.errors import RunError, UserError, first_line
from ..common.logger import get_logger
from .errors import Unavailable
from .pool import DaemonPool

STATES = ("queued", "running", "done", "failed", "cancelled")


class JobFailed(RunError):
    """The work ended early with a reason, but has a partial ``result`` worth keeping (a timeline's windows
    before the video broke off)."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


class Job:
    """One job's state; every field is written under its lock and read through :meth:`snapshot`."""

    def __init__(self, kind, filename):
        self.id = secrets.token_hex(16)
        self.kind, self.filename = kind, filename
        self.state, self.error, self.result = "queued", None, None
        self.done, self.total, self.items = 0, None, []
        self.created, self.finished = time.time(), None
        self._stop, self._lock = threading.Event(), threading.Lock()

    def should_stop(self):
        return self._stop.is_set()

    def cancel(self):
        self._stop.set()

    def progress(self, done=None, total=None, item=None):
        """Publish progress: ``done`` / ``total`` units, and one more partial result ``item``."""
        with self._lock:
            if item is not None:
                self.items.append(item)
            if done is not None:
                self.done = int(done)
            if total is not None:
                self.total = int(total)

    def _finish(self, state, result=None, error=None):
        with self._lock:
            self.state, self.result, self.error, self.finished = state, result, error, time.time()

    def snapshot(self, since=0):
        """The JSON for ``GET /jobs/<id>``: ``id``, ``kind``, ``file``, ``state``, ``progress`` (``done``,
        ``total``, ``fraction``), ``items`` from index ``since`` (and ``since``), ``result`` and ``error``."""
        with self._lock:
            since = max(0, min(int(since), len(self.items)))
            fraction = None
            if self.state == "done":
                fraction = 1.0
            elif self.total:
                fraction = min(1.0, self.done / self.total)
            return {"id": self.id, "kind": self.kind, "file": self.filename, "state": self.state,
                    "progress": {"done": self.done, "total": self.total, "fraction": fraction},
                    "since": since, "items": list(self.items[since:]), "result": self.result, "error": self.error}


class JobManager:
    """Runs ``work(job)`` for each submitted job in ``max_running`` threads; keeps finished jobs a while."""

    def __init__(self, max_running, max_kept, ttl_s):
        self.max_running, self.max_kept, self.ttl_s = int(max_running), int(max_kept), float(ttl_s)
        self._pool = DaemonPool(self.max_running, "paddlevideo-job")
        self._jobs, self._lock = {}, threading.Lock()
        self._futures = set()
        self.closing = False

    def counts(self):
        """``{state: number of jobs}`` (for the metrics)."""
        with self._lock:
            jobs = list(self._jobs.values())
        return {state: sum(job.state == state for job in jobs) for state in STATES}

    def check_room(self):
        """:class:`Unavailable` (503) now when a job submitted now would be refused (before its upload is read)."""
        if self.closing:
            raise Unavailable("the service is stopping", retry_after=5)
        self._expire()
        with self._lock:
            active = sum(job.state in ("queued", "running") for job in self._jobs.values())
        if active >= 2 * self.max_running:
            raise Unavailable(f"busy: {active} jobs queued or running (--max_jobs {self.max_running}); retry later",
                              retry_after=30)

    def submit(self, kind, filename, work, cleanup=None):
        """Start ``work(job)`` (its return value becomes ``job.result``); ``cleanup()`` runs after it whatever
        happens (also when the job is refused here). Returns the :class:`Job`."""
        try:
            self.check_room()  # routes call this from the one event-loop thread: no other submit interleaves
            job = Job(kind, filename)
            with self._lock:
                self._jobs[job.id] = job
        except BaseException:
            if cleanup is not None:
                cleanup()
            raise
        future = self._pool.submit(self._run, job, work, cleanup)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return job

    def _forget(self, future):
        with self._lock:
            self._futures.discard(future)

    def get(self, job_id):
        self._expire()
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job, work, cleanup):
        try:
            if job.should_stop():
                job._finish("cancelled", error="cancelled before it started")
                return
            with job._lock:
                job.state = "running"
            result = work(job)
            if job.should_stop():
                job._finish("cancelled", result=result, error="cancelled")
            else:
                job._finish("done", result=result)
        except JobFailed as err:
            job._finish("failed", result=err.result, error=first_line(err))
        except Exception as err:  # noqa: BLE001 - the job fails with one line; the service goes on
            if isinstance(err, UserError):
                job._finish("failed", error=first_line(err))
            else:  # a bug: its traceback goes to the log, the client gets its type only
                get_logger().exception("job %s failed", job.id)
                job._finish("failed", error=f"internal error ({type(err).__name__}); it is logged")
        finally:
            if cleanup is not None:
                cleanup()

    def _expire(self):
        now = time.time()
        with self._lock:
            finished = sorted((job for job in self._jobs.values() if job.finished is not None),
                              key=lambda job: job.finished)
            extra = max(0, len(finished) - self.max_kept)
            for index, job in enumerate(finished):
                if index < extra or now - job.finished > self.ttl_s:
                    del self._jobs[job.id]

    def close(self, timeout=10.0):
        """Ask every job to stop; wait up to ``timeout`` seconds for the running ones."""
        self.closing = True
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        with self._lock:
            futures = list(self._futures)
        wait(futures, timeout)  # queued jobs run at once and end as cancelled
        self._pool.shutdown(cancel_futures=False)
