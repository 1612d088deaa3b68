"""Paddle 3.3: an exception that ends ``paddle.io.DataLoader``'s reader thread leaves the main thread waiting.

Bug (``paddle/io/dataloader/dataloader_iter.py``): ``_DataLoaderIterSingleProcess._thread_loop`` (and the
multi-process iterator's) catches only ``StopIteration``; any other exception ends the thread without closing or
killing its blocking queue, and the main thread waits in ``read_next_list()`` for a batch that never comes.
Reproduced by ``tests/test_reliability_loader.py::test_paddle_alone_hangs_on_a_failing_dataset``.
The project's loader (``paddlevideo/loader/failures.py``) finds the iterator of a thread that died here and
wakes its main thread. Delete this module when Paddle's loader thread kills its queue on any exception.
"""


def iterator_of_thread(tb, reads):
    """The Paddle loader iterator whose ``_thread_loop`` is on traceback ``tb``, if ``reads(its dataset)`` is true;
    else None. Found from the traceback because the thread may die before its iterator is returned to anyone."""
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self") if frame.f_code.co_name == "_thread_loop" else None
        if owner is not None and reads(getattr(owner, "_dataset", None)):
            return owner
        tb = tb.tb_next
    return None


def wake_main_thread(iterator):
    """Kill ``iterator``'s blocking queue: the main thread's read raises instead of waiting forever."""
    kill = getattr(iterator, "_exit_thread_unexpectedly", None)
    if kill is not None:
        kill()
