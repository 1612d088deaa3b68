"""Every change this project makes to the process as a whole, each a named function called at a named moment.

Library code (models, loaders, export, predictors) never changes the process itself; it calls one of these.
What is changed, and when:

- **CPU set-up** (:func:`configure_cpu`): entry points call it once, early, before the first matmul; a library
  user gets it at the first ``build_model`` (:func:`configure_cpu_once`, opt-out ``PADDLEVIDEO_CONFIGURE_CPU=0``).
  Environment variables for MKL on AMD, Paddle's stride-kernel flag, OpenMP threads, glibc malloc.
- **Output** while native code runs: :func:`native_stdout_to_stderr` (a runtime's debug prints stay off stdout,
  which carries predictions), :func:`redirect_output` (a C++ build's compiler lines go to a log),
  :func:`discard_stdout` (the reader of stdout went away: ``| head``).
- **Threads and workers**: :func:`chain_thread_excepthook` (an exception that ends a thread reaches a handler
  that can stop the run), :func:`ignore_sigint` (a loader worker leaves Ctrl-C to its parent).
- **Warnings**: :func:`quiet_third_party_warnings` (every entry point, first thing: notices of other packages
  that mean nothing to a user of the tools).
- **Signals**: :func:`signals_to` (while ``tools/serve.py`` serves: SIGINT / SIGTERM ask uvicorn to shut down
  gracefully instead of raising ``cli.Interrupted``).

Nothing runs at import time.

CPU set-up in detail (timings in ``docs/benchmarks.md``):

- ``MKL_DEBUG_CPU_TYPE=5`` on AMD processors only: the MKL bundled with Paddle picks a slow generic code path
  on AMD unless told otherwise. On Intel processors the same variable would force a lower instruction set
  (it disables AVX-512), so it is never applied there. MKL reads the variable when it first dispatches a
  kernel, so setting it after ``import paddle`` still works as long as no matmul has run yet.
- On Linux with glibc, :func:`tune_malloc` keeps freed memory in the process instead of returning it to the
  kernel. Paddle's CPU allocator hands every tensor straight to ``malloc``; by default glibc serves large
  blocks (a ViT-B clip's activations) with fresh ``mmap`` pages, so every element-wise op first page-faults
  its whole output. Reusing heap memory removes those faults. Peak RSS stays about the same (the same blocks
  are reused), but RSS no longer shrinks after the peak.
  Not for processes that stream for a long time (a timeline of a long video, the service): there the heap,
  never trimmed, fragments and grows with the hours (``configure_cpu(..., malloc=False)``; measured by
  ``tests/test_timeline_memory.py``).
- ``FLAGS_use_stride_kernel=0``: Paddle 3's "stride kernels" make ``transpose``/``unbind``/``split`` return
  strided views, and the CPU kernels that later read such views (element-wise ops, matmul, the copy in
  ``reshape``) are much slower than on dense tensors. Off, a view op writes a dense result (Paddle 2.x
  behaviour), which changes no values. Users who set the flag themselves keep their choice.
"""

import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
import warnings

from .utils.cpu_features import AMD_VENDOR, cpu_vendor
from .utils.logger import get_logger

CONFIGURE_CPU_SWITCH = "PADDLEVIDEO_CONFIGURE_CPU"  # "0": building a model leaves the CPU set-up alone
MKL_CPU_TYPE_VAR = "MKL_DEBUG_CPU_TYPE"
STRIDE_FLAG = "FLAGS_use_stride_kernel"
# MKL's AVX2 code path; the value documented by users of MKL on AMD Zen processors.
MKL_AMD_CPU_TYPE = "5"

_lock = threading.Lock()
_state = {"configured": False, "malloc": False}  # this process's set-up (configure_cpu on os.environ)


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


@contextlib.contextmanager
def redirect_output(log):
    """Send this process's file descriptors 1 and 2 to the open file ``log`` meanwhile (Python's warnings off
    too). For a C++ build: Paddle runs setup.py in a child process that inherits them and logs the compiler's
    commands, which would otherwise flood the console."""
    import warnings

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def discard_stdout():
    """Point file descriptor 1 at ``/dev/null``: the reader of stdout went away (``| head``), and Python's exit
    would otherwise fail flushing into the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _flush_c_stdio():
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library handle (not POSIX)
        pass


# ------------------------------------------------------------------ threads and worker processes

_thread_handlers = []


def chain_thread_excepthook(handler):
    """Put ``handler(args)`` in front of ``threading.excepthook`` (once per handler). It returns True when it
    handled the exception that ended a thread; otherwise the previous hook runs (Python's prints it). The data
    loader uses it: Paddle 3.3 ends its loader thread on an exception and leaves the main thread waiting."""
    with _lock:
        if handler in _thread_handlers:
            return
        if not _thread_handlers:
            previous = threading.excepthook

            def excepthook(args):
                for chained in list(_thread_handlers):
                    if chained(args):
                        return None
                return previous(args)

            threading.excepthook = excepthook
        _thread_handlers.append(handler)


def ignore_sigint():
    """In a loader worker process, Ctrl-C is the main process's business: the worker ignores SIGINT and ends
    when the main process shuts the loader down (or exits), instead of printing its own traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ------------------------------------------------------------------ CPU set-up

def blas_env_for_vendor(vendor, environ):
    """Environment variables to add for ``vendor``, given the current ``environ`` (a mapping).

    Returns a dict (possibly empty). A value the user already set is never overridden.
    """
    if vendor == AMD_VENDOR and MKL_CPU_TYPE_VAR not in environ:
        return {MKL_CPU_TYPE_VAR: MKL_AMD_CPU_TYPE}
    return {}


# glibc mallopt() parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to 1 GiB come from the heap (far above the largest activation of a batch-4 base-model step);
# the heap is trimmed only when 2 GiB - 1 (the largest int) are free at its top.
MMAP_THRESHOLD_BYTES = 1 << 30
TRIM_THRESHOLD_BYTES = (1 << 31) - 1


def tune_malloc():
    """Make glibc reuse freed heap memory for large blocks (see the module docstring).

    Returns True when applied; False on other platforms or C libraries (nothing is changed).
    """
    if not sys.platform.startswith("linux"):
        return False
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; both must succeed for the effect (trim alone does nothing).
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def disable_stride_kernels(environ=None):
    """Make Paddle's view ops (transpose, unbind, split, ...) produce dense tensors (module docstring).

    Sets ``FLAGS_use_stride_kernel=0`` in ``environ`` (read by Paddle at import) unless the user set
    it, and applies it to an already imported Paddle. Returns the value now in effect ("0" or the user's).
    """
    environ = os.environ if environ is None else environ
    value = environ.setdefault(STRIDE_FLAG, "0")
    if environ is os.environ and "paddle" in sys.modules:
        import paddle

        paddle.set_flags({STRIDE_FLAG: value.strip().lower() in ("1", "true")})
    return value


def configure_cpu(threads=None, environ=None, vendor=None, malloc=True, stride_kernels=False):
    """Prepare the process for fast fp32 CPU work; call from entry points before the first matmul.

    Args:
        threads: number of BLAS/OpenMP threads (``None`` keeps the library default, i.e. all cores).
        environ: the environment mapping to edit (default ``os.environ``; tests pass a dict).
        vendor: CPU vendor override (default: read from the machine).
        malloc: also call :func:`tune_malloc` (only when ``environ`` is the real environment).
        stride_kernels: keep Paddle's strided views (default False: :func:`disable_stride_kernels`).

    Returns:
        dict of the environment variables that were set by this call.
    """
    logger = get_logger()
    environ = os.environ if environ is None else environ
    vendor = cpu_vendor() if vendor is None else vendor
    applied = blas_env_for_vendor(vendor, environ)
    if vendor != AMD_VENDOR and MKL_CPU_TYPE_VAR in environ:
        logger.warning(
            "%s=%s is set on a %s CPU: it slows MKL down on non-AMD processors; unset it",
            MKL_CPU_TYPE_VAR, environ[MKL_CPU_TYPE_VAR], vendor or "non-AMD",
        )
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        applied["OMP_NUM_THREADS"] = str(int(threads))
    if not stride_kernels and STRIDE_FLAG not in environ:
        applied[STRIDE_FLAG] = "0"
    environ.update(applied)
    if not stride_kernels:
        disable_stride_kernels(environ)
    if environ is os.environ:
        if threads is not None:
            _set_paddle_threads(int(threads))
        _state["malloc"] = bool(malloc and tune_malloc())
        _state["configured"] = True  # the process is set up: building a model does not do it again
    if applied:
        logger.debug("CPU set-up for %s: %s", vendor or "unknown vendor", applied)
    return applied


def configure_cpu_once():
    """:func:`configure_cpu` for this process unless it ran already or ``PADDLEVIDEO_CONFIGURE_CPU=0`` is set;
    called when a model is built, so library users get the entry points' set-up. Logs one line saying what
    was set. Returns the environment variables set (``{}`` when nothing was done)."""
    if _state["configured"]:
        return {}
    _state["configured"] = True
    if os.environ.get(CONFIGURE_CPU_SWITCH, "1").strip() == "0":
        return {}
    applied = configure_cpu()
    done = [f"{key}={value}" for key, value in applied.items()] + (["malloc reuse"] if _state["malloc"] else [])
    get_logger().info("CPU set-up for fast fp32 work: %s (%s=0 keeps Paddle's defaults)",
                      ", ".join(done) or "nothing to change", CONFIGURE_CPU_SWITCH)
    return applied


def _set_paddle_threads(threads):
    # OMP_NUM_THREADS only counts if it is set before the OpenMP runtime starts; if Paddle is
    # already imported, tell its math library directly.
    if "paddle" in sys.modules:
        from paddle.base import core

        core.set_num_threads(threads)


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


# ------------------------------------------------------------------ warnings

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
