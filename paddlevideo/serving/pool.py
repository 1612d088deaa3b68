"""A small thread pool whose threads are daemons.

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits, so one decode stuck
in a broken video's C library would keep a stopped service alive forever. These threads do not hold the
process: the service waits for them a bounded time when it stops (it knows what work is still held), and
then the process may exit.
"""

import queue
import threading
from concurrent.futures import Future

STOP = object()  # put on a work queue: the thread that takes it ends


def take_waiting(work_queue):
    """The items still waiting in ``work_queue``, taken off it without blocking, :data:`STOP` marks left out."""
    while True:
        try:
            item = work_queue.get_nowait()
        except queue.Empty:
            return
        if item is not STOP:
            yield item


class DaemonPool:
    """``submit(fn, *args) -> Future`` run by ``workers`` daemon threads named ``name-N``."""

    def __init__(self, workers, name):
        self._queue = queue.Queue()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(int(workers))]
        for thread in self._threads:
            thread.start()

    def submit(self, fn, *args, **kwargs):
        if self._closed:
            raise RuntimeError("the pool is shut down")
        future = Future()
        self._queue.put((future, fn, args, kwargs))
        return future

    def _work(self):
        while True:
            item = self._queue.get()
            if item is STOP:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as err:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(err)
            else:
                future.set_result(result)

    def shutdown(self, cancel_futures=True):
        """No more work; cancel what has not started (its done-callbacks run: uploads are removed)."""
        self._closed = True
        if cancel_futures:
            for future, *_ in take_waiting(self._queue):
                future.cancel()
        for _ in self._threads:
            self._queue.put(STOP)

    def join(self, timeout):
        """Wait up to ``timeout`` seconds in all for the threads to finish their current work."""
        import time

        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)
