"""Every change this project makes to the process as a whole, each a named function called at a named moment.

Library code (models, loaders, export, predictors) never changes the process itself; it calls one of these.
What is changed, and when:

- output: :func:`native_stdout_to_stderr` (while a native runtime runs: its debug prints stay off stdout,
  which carries predictions);
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
