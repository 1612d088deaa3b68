"""How a loader failure reaches the main thread as one line instead of a hang.

Where Paddle 3.3 loses an error (``paddle/io/dataloader/dataloader_iter.py``):

- ``num_workers=0``: ``_DataLoaderIterSingleProcess._thread_loop`` runs the dataset and ``collate_fn`` in a
  loader thread inside a ``try`` that catches only ``StopIteration``. Any other exception ends the thread
  (a traceback on stderr) without closing or killing its blocking queue, and the main thread then waits in
  ``read_next_list()`` for a batch that never comes: the run hangs with no exit code.
- ``num_workers>0``: a worker's exception does reach the main thread, but as ``SystemError: Blocking queue is
  killed``; the cause is only in a traceback the loader thread prints.

So the loader guards at three levels:

1. :class:`GuardedDataset` wraps the dataset: an exception in ``__getitem__`` becomes a :class:`SampleFailure`
   item, and the collate functions turn a batch holding one into :func:`failure_batch`, a batch that carries
   the message in-band (a plain string survives Paddle's batch flattening in threads and worker processes).
2. :class:`GuardedLoader` raises :class:`LoaderError` in the main thread when such a batch arrives.
3. An exception that still ends Paddle's loader thread (in the sampler, in Paddle's own code, or re-raised
   from a worker) is caught by a ``threading.excepthook`` handler (:func:`paddlevideo.runtime.chain_thread_excepthook`)
   that wakes the main thread (:mod:`paddlevideo.compat.dataloader_thread`) and keeps the message for the
   :class:`LoaderError`.

Samples that cannot be decoded or transformed are not failures here: the dataset skips them (train draws a
replacement, test excludes and counts them) before any of this is needed.
"""

import traceback
import weakref

import numpy as np

from ..compat import dataloader_thread
from ..runtime import chain_thread_excepthook
from ..common.errors import RunError, UserError
from ..common.logger import get_logger

FAILURE_KEY = "paddlevideo_loader_failure"


class LoaderError(RunError):
    """The data loader cannot go on (e.g. every replacement draw failed, or a loader worker crashed).

    ``details`` holds the traceback text of the original error when there was one (logged at debug level).
    """

    def __init__(self, message, details=""):
        super().__init__(message)
        self.details = details


class SampleFailure:
    """What :class:`GuardedDataset` returns instead of raising: the one-line message and the traceback."""

    def __init__(self, message, details=""):
        self.message = message
        self.details = details

    def __repr__(self):
        return f"SampleFailure({self.message!r})"


def describe(err):
    """A one-line description: a UserError's message, else ``Type: first line``."""
    if isinstance(err, UserError):
        return str(err)
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def failure_batch(failure):
    """A batch that carries ``failure`` (a :class:`SampleFailure`) to the main thread."""
    # the marker array keeps the batch non-empty for Paddle's queue; the strings travel in its structure
    return {FAILURE_KEY: failure.message, "details": failure.details, "marker": np.zeros((1,), np.uint8)}


def first_failure(items):
    """The first :class:`SampleFailure` among a batch's items, or None."""
    return next((item for item in items if isinstance(item, SampleFailure)), None)


class GuardedDataset:
    """``dataset`` whose ``__getitem__`` never raises: an exception becomes a :class:`SampleFailure`."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        try:
            return self.dataset[index]
        except Exception as err:  # noqa: BLE001 - anything raised here would hang or garble the loader
            return SampleFailure(describe(err), traceback.format_exc())

    def __getattr__(self, name):  # the wrapped dataset's attributes (info, mode, ...)
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def guarded_collate(collate):
    """``collate`` that returns :func:`failure_batch` instead of raising, and for a batch with a failed item."""

    def run(items):
        failure = first_failure(items)
        if failure is not None:
            return failure_batch(failure)
        try:
            return collate(items)
        except Exception as err:  # noqa: BLE001 - see the module docstring
            return failure_batch(SampleFailure(f"cannot assemble a batch: {describe(err)}", traceback.format_exc()))

    run.__name__ = getattr(collate, "__name__", "collate")
    run.__doc__ = collate.__doc__
    return run


class GuardedLoader:
    """A ``paddle.io.DataLoader`` that raises :class:`LoaderError` instead of hanging or printing tracebacks.

    Iterating yields exactly the loader's batches; ``len()`` and ``batch_sampler`` are the loader's.
    """

    def __init__(self, loader):
        self.loader = loader

    @property
    def batch_sampler(self):
        return self.loader.batch_sampler

    @property
    def dataset(self):
        return self.loader.dataset

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        chain_thread_excepthook(_loader_thread_ended)  # before Paddle starts the loader thread, which may fail at once
        try:
            return GuardedIterator(iter(self.loader))
        except Exception as err:  # noqa: BLE001 - e.g. the sampler fails while workers get their first indices
            raise LoaderError(f"the data loader failed to start: {describe(err)}",
                              traceback.format_exc()) from None


class GuardedIterator:
    """One pass over a :class:`GuardedLoader`; ``close()`` stops Paddle's loader thread and workers."""

    def __init__(self, paddle_iterator):
        self._it = paddle_iterator

    def __iter__(self):
        return self

    def __next__(self):
        try:
            batch = next(self._it)
        except StopIteration:
            raise
        except Exception as err:  # noqa: BLE001 - Paddle's SystemError 'Blocking queue is killed' and kin
            error = self._error_from(err)
            self.close()
            raise error from None
        if isinstance(batch, dict) and FAILURE_KEY in batch:
            self.close()
            details = batch.get("details", "")
            if details:
                get_logger("loader").debug("loader failure:\n%s", details)
            raise LoaderError(batch[FAILURE_KEY], details)
        return batch

    def _error_from(self, err):
        cause = _THREAD_ERRORS.get(self._it)
        if cause is not None:
            details = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
            get_logger("loader").debug("loader thread failed:\n%s", details)
            return LoaderError(f"the data loader failed: {_last_line(cause)}", details)
        if "queue is killed" in str(err) or "DataLoader process" in str(err):  # Paddle's words: a worker died
            return LoaderError(f"the data loader stopped ({describe(err)}); a loader worker process crashed or was "
                               "killed (out of memory?)")
        return LoaderError(f"the data loader failed: {describe(err)}", traceback.format_exc())

    def close(self):
        """Stop the loader thread and worker processes of this pass (safe to call twice)."""
        it, self._it = self._it, _Exhausted()
        shutdown = getattr(it, "_shutdown_on_exit", None) or getattr(it, "_try_shutdown_all", None)
        if shutdown is not None:
            try:
                shutdown()
            except Exception:  # noqa: BLE001 - closing must not hide the error that made us close
                pass


class _Exhausted:
    def __next__(self):
        raise StopIteration


def _last_line(err):
    """A worker's re-raised error carries the worker's whole traceback as its message: keep its last line."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(err).__name__


_THREAD_ERRORS = weakref.WeakKeyDictionary()  # Paddle loader iterator -> the exception that ended its thread


def _loader_thread_ended(args):
    """``threading.excepthook`` handler: True when the thread was a guarded loader's, whose error is kept and
    whose main thread is woken (:mod:`paddlevideo.compat.dataloader_thread`)."""
    owner = dataloader_thread.iterator_of_thread(args.exc_traceback, lambda data: isinstance(data, GuardedDataset))
    if owner is None:
        return False
    _THREAD_ERRORS[owner] = args.exc_value
    dataloader_thread.wake_main_thread(owner)
    return True
