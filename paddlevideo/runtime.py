"""Every change this project makes to the process as a whole, each a named function called at a named moment.

Library code (models, loaders, export, predictors) never changes the process itself; it calls one of these.
What is changed, and when:

- output: :func:`native_stdout_to_stderr` (while a native runtime runs: its debug prints stay off stdout,
  which carries predictions);
- signals: :func:`signals_to` (while ``tools/serve.py`` serves: SIGINT / SIGTERM ask uvicorn to shut down
  gracefully instead of raising ``cli.Interrupted``);
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stdout_to_stderr():
    """Send C/C++ writes to file descriptor 1 to stderr meanwhile. Paddle 3.3's oneDNN kernel choice prints
    debug lines (``ReduceMeanCheckIfOneDNNSupport``) to stdout and paddle2onnx logs there, while stdout
    carries the predictions a user pipes on."""
    try:
        stdout_fd, stderr_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # streams without descriptors (some notebooks)
        yield
        return
    sys.stdout.flush()
    saved = os.dup(stdout_fd)
    try:
        os.dup2(stderr_fd, stdout_fd)
        yield
    finally:
        _flush_c_stdio()  # C/C++ lines still buffered belong to stderr too
        os.dup2(saved, stdout_fd)
        os.close(saved)


def _flush_c_stdio():
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library handle (not POSIX)
        pass


@contextlib.contextmanager
def signals_to(handler, signums=None):
    """While inside, SIGINT and SIGTERM call ``handler(signum, frame)`` instead of the handlers in place
    (``utils.cli.run``'s, which raise ``Interrupted``); those come back on exit, unchanged.

    For a server that stops gracefully on a signal (uvicorn: stop accepting, finish the requests in flight,
    exit 0) inside a tool run by ``cli.run``: the signal must reach the server's event loop as a request to
    stop, not as an exception in the middle of it. Main thread only (Python sets handlers there); elsewhere
    nothing is changed.
    """
    import signal
    import threading

    signums = (signal.SIGINT, signal.SIGTERM) if signums is None else tuple(signums)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
