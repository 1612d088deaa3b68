"""Every change this project makes to the process as a whole, each a named function called at a named moment.

Library code (models, loaders, export, predictors) never changes the process itself; it calls one of these.
What is changed, and when:

- output: :func:`native_stdout_to_stderr` (while a native runtime runs: its debug prints stay off stdout,
  which carries predictions);
- warnings: :func:`quiet_third_party_warnings` (every entry point, first thing: notices of other packages
  that mean nothing to a user of the tools);
"""

import contextlib
import os
import sys
import warnings


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


# (message regex, category) of third-party warnings no user of the tools can act on.
THIRD_PARTY_NOTICES = (
    # paddle.utils.cpp_extension, imported by `import paddle`: a C++ build cache (ccache) is not installed.
    # Only a rebuild of the fused CPU kernels is slower without it (once per environment).
    ("No ccache found", UserWarning),
)


def quiet_third_party_warnings():
    """Ignore :data:`THIRD_PARTY_NOTICES` in this process (``warnings.filterwarnings``: a process-wide filter).
    Called by every entry point before paddle is imported: ``tools/_bootstrap.py`` and ``cli.run``; the test
    suite has the same filter in ``pytest.ini``. Library code never calls it: a program that imports the library
    keeps its own warning settings."""
    for message, category in THIRD_PARTY_NOTICES:
        warnings.filterwarnings("ignore", message=message, category=category)
