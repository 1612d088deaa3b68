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
  that can stop the run), :func:`ignore_sigint` (a loader worker leaves Ctrl-C to its parent),
  :func:`configure_model_process` and :func:`ignore_interrupts` (the service's model process: its CPU set-up,
  its runtime's prints to stderr, the process group's Ctrl-C and SIGTERM left to the service).
- **Warnings**: :func:`quiet_third_party_warnings` (every entry point, first thing: notices of other packages
  that mean nothing to a user of the tools).
- **Signals**: :func:`guard_start_up` (the first line of every entry point: until the run starts, SIGINT / SIGTERM
  end the process at once with the tool's ``interrupted`` line), then :func:`install_signal_guard` (SIGINT /
  SIGTERM handlers, put back after ``import paddle`` replaced them, and ``sys.unraisablehook``) for the whole of
  one command-line run (``cli.run`` calls it, and :meth:`SignalGuard.restore` at the end; for the program
  itself, a signal while the interpreter exits then ends it with the run's exit code, or is ignored from the
  atexit functions on).; :func:`signals_to` (while
  ``tools/serve.py`` serves: SIGINT / SIGTERM ask uvicorn to shut down gracefully instead of raising).

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

How an interrupt is delivered (:class:`SignalGuard`)
----------------------------------------------------
Python runs a signal handler in the main thread between two bytecodes of whatever code runs there. If the
handler raised at once, the exception would land wherever that is, and inside a finalizer (an object's
``__del__``, a ``weakref.finalize`` or other weak-reference callback, a ``gc.callbacks`` function, a generator
closed by the garbage collector) Python cannot pass it on: it prints ``Exception ignored in ...`` with a
traceback and the program goes on as if nothing happened. So:

1. the handler records the signal, then looks at the interrupted frames: when none of them is a finalizer nor
   an import in progress (native modules run Python code from their C/C++ initialisation: an exception there
   comes out as another error, e.g. ``import paddle`` then prints "Can not import paddle core", or aborts the
   process, as torch's import under NNCF did) it raises :class:`Interrupted` (a ``KeyboardInterrupt``) there,
   in the main thread's own code, so ``finally`` blocks and context managers clean up;
2. inside a finalizer or an import it raises nothing: the finalizer (the import) runs to its end, and a
   watcher thread waits (polling every :data:`REDELIVERY_POLL_S`) until the main thread's stack holds neither,
   then sends the same signal once more to the main thread (``signal.pthread_kill``: a blocking wait there
   ends too; step 1 again). An import delays the interrupt by at most its own length (``import paddle``: ~3 s);
3. a finalizer the frame check cannot recognise (a plain weak-reference callback, a generator closed by the
   garbage collector) still gets the exception, but ``sys.unraisablehook`` takes it instead of printing, and
   it is delivered again as in 2. Such a finalizer is cut short; the interrupt is never lost. Once interrupted,
   the hook drops every finalizer error (an object whose construction the interrupt cut short may fail in its
   ``__del__``), so the run ends on its one line (``--debug`` prints them).

Repeated signals: within :data:`FORCE_AFTER_S` of the first they are absorbed (a held key or a supervisor's
repeated ``kill`` cannot break the clean-up); a later one ends the process at once (``os._exit``) with the
same line and exit code, for a clean-up that hangs.
"""

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
import warnings

from .common.cpu_features import AMD_VENDOR, cpu_vendor
from .common.logger import get_logger

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


def configure_model_process(threads):
    """In the service's model process (:mod:`paddlevideo.serving.model_process`), before the runtime loads: the
    CPU set-up for ``threads`` (None: every core), glibc's malloc left alone (the process serves for hours), and
    file descriptor 1 pointed at stderr for good, so the runtime's own prints (oneDNN's kernel choice) reach the
    service's log instead of mixing with the lines it writes to stdout."""
    configure_cpu(threads, malloc=False)
    os.dup2(2, 1)


def ignore_interrupts():
    """In the service's model process, once the runtime is imported (Paddle installs its own handlers then):
    SIGINT and SIGTERM sent to the whole process group (a Ctrl-C, a service manager) are ignored, so the
    service can still answer the requests in flight; the process ends when the service tells it to or when
    its pipe to the service closes."""
    _ignore_signals()


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


def configure_measuring_process(threads, cpu_setup="entry point", extra_env=None):
    """A benchmark worker's process (tools/benchmarks), before Paddle is imported: ``threads`` OpenMP threads;
    the CPU set-up as an ``entry point`` gets it (:func:`configure_cpu` now), as a ``library`` user gets it
    (from the first ``build_model``) or ``none`` (Paddle's defaults: building the model leaves them alone);
    ``extra_env`` on top; Paddle's C++ INFO lines off, since they would break the benchmark's table."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if cpu_setup == "none":
        os.environ[CONFIGURE_CPU_SWITCH] = "0"
    elif cpu_setup == "entry point":
        configure_cpu(threads=threads)
    elif cpu_setup != "library":
        raise ValueError(f"cpu_setup must be 'entry point', 'library' or 'none', got {cpu_setup!r}")
    os.environ.update(extra_env or {})
    os.environ.setdefault("GLOG_minloglevel", "2")


def _set_paddle_threads(threads):
    # OMP_NUM_THREADS only counts if it is set before the OpenMP runtime starts; if Paddle is
    # already imported, tell its math library directly.
    if "paddle" in sys.modules:
        from paddle.base import core

        core.set_num_threads(threads)


@contextlib.contextmanager
def signals_to(handler, signums=None):
    """While inside, SIGINT and SIGTERM call ``handler(signum, frame)`` instead of the handlers in place
    (``cli.run``'s, which raise ``Interrupted``); those come back on exit, unchanged.

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


# ------------------------------------------------------------------ signals

# A second signal sooner than this after the first is absorbed (clean-up keeps running); a later one forces.
FORCE_AFTER_S = 1.0
# How often the watcher thread looks whether a deferred interrupt can be delivered (the main thread left the
# finalizer it was in).
REDELIVERY_POLL_S = 0.005
GUARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by :class:`SignalGuard` for SIGINT and SIGTERM; ``signum`` says which."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _unsafe_codes():
    """Code objects under which a raised exception cannot propagate as itself: ``weakref.finalize`` calls and
    ``gc.callbacks`` (finalizers), and the import of a module (``importlib``'s ``_find_and_load``): native
    modules run Python code from their C/C++ initialisation, where an exception comes out as another error
    (Paddle's ``libpaddle`` then prints "Can not import paddle core") or aborts the process (seen with torch,
    imported by NNCF), and a module left half-imported may run its exit hooks later (torch logs cache stats)."""
    import _frozen_importlib
    import gc
    import weakref

    codes = {weakref.finalize.__call__.__code__, _frozen_importlib._find_and_load.__code__}
    codes.update(code for code in (getattr(callback, "__code__", None) for callback in list(gc.callbacks)) if code)
    return codes


def inside_finalizer(frame, also=()):
    """Whether ``frame`` or a frame that called it is a finalizer (a ``__del__`` method, a ``weakref.finalize``
    callback, a ``gc.callbacks`` function) or an import (see :func:`_unsafe_codes`): places where a raised
    exception could not propagate as itself; or runs one of the code objects ``also``."""
    codes = None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code in also:
            return True
        if codes is None:
            codes = _unsafe_codes()
        if code in codes:
            return True
        frame = frame.f_back
    return False


class SignalGuard:
    """SIGINT / SIGTERM handling for one command-line run; see the module docstring for how it delivers.

    ``signum`` is the first signal received (None before). ``prog`` names the tool in the line printed on a
    forced stop.
    """

    def __init__(self, prog, debug=False):
        self.prog = prog
        self.debug = debug
        self.signum = None
        self.first_at = None
        self.raising = True
        self.pid = os.getpid()
        self.saved = {}
        self.hook = None
        self._saved_unraisablehook = None
        self._delivered = False  # Interrupted was raised where it propagates (not swallowed since)
        self._pending = False  # a watcher thread waits to deliver it again
        self._redelivering = False  # the next handler call is the watcher's signal, not the user's
        # the guard's own code that runs in a finalizer's context: never raise there
        self._own_codes = frozenset(f.__code__ for f in (SignalGuard._unraisable, SignalGuard._deliver_later))

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be set from the main thread
        for signum in GUARDED_SIGNALS:
            self.saved[signum] = signal.getsignal(signum)
        self._set_handlers()
        self._saved_unraisablehook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        if "paddle.base" not in sys.modules:
            # paddle.base installs Paddle's C++ SIGTERM handler while it is imported (first thing in an
            # `import paddle`): put this one back right after, and once more when paddle is complete
            self.hook = AfterImport(("paddle.base", "paddle"), self._set_handlers)
            sys.meta_path.insert(0, self.hook)
        return self

    def _set_handlers(self):
        if threading.current_thread() is threading.main_thread():
            for signum in GUARDED_SIGNALS:
                signal.signal(signum, self._handle)

    def _handle(self, signum, frame):
        if os.getpid() != self.pid:
            # A forked child (e.g. a loader worker) inherited this handler: behave as Python's defaults do.
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        redelivery, self._redelivering = self._redelivering, False
        if self.signum is None:
            self.signum, self.first_at = signum, time.monotonic()
        elif not redelivery:  # the user's repeated signal
            if time.monotonic() - self.first_at >= FORCE_AFTER_S:
                print_line(f"{self.prog}: interrupted")
                os._exit(128 + self.signum)
            return
        elif self._delivered:
            return
        if not self.raising:
            return
        if inside_finalizer(frame, self._own_codes):
            self._deliver_later()  # an exception here would be printed and dropped by Python
            return
        self._delivered = True
        raise Interrupted(self.signum)

    def _unraisable(self, unraisable):
        """An interrupt raised in a finalizer the frame check did not recognise: deliver it again, unprinted.
        After an interrupt, any other error of a finalizer is its consequence (an object whose ``__init__`` the
        interrupt cut short fails in its ``__del__``, seen with decord's ``NDArray``): not printed either, so the
        run still ends on its one line (``debug`` prints it)."""
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and self.signum is not None:
            self._delivered = False
            if self.raising:
                self._deliver_later()
            return
        if self.signum is not None and not self.debug:
            return
        (self._saved_unraisablehook or sys.__unraisablehook__)(unraisable)

    def _deliver_later(self):
        """Start the watcher that delivers the recorded signal once the main thread is out of finalizers."""
        if self._pending:
            return
        self._pending = True
        threading.Thread(target=self._watch, name="interrupt-redelivery", daemon=True).start()

    def _watch(self):
        main = threading.main_thread()
        while self.raising and main.is_alive():
            time.sleep(REDELIVERY_POLL_S)
            frame = sys._current_frames().get(main.ident)
            if frame is None or not inside_finalizer(frame, self._own_codes):
                break
        self._pending = False
        if self.raising and not self._delivered and main.is_alive():
            self._redelivering = True
            # a real signal to the main thread: it also ends a blocking wait there (sleep, join, a queue)
            signal.pthread_kill(main.ident, self.signum)

    def quiet(self):
        """From now on signals are only recorded (the wrapper is reporting; nothing is left to stop)."""
        self.raising = False

    def restore(self, exit_code=None):
        """Put the previous handlers back, unless the run was interrupted: the process then only exits, and
        further SIGINT / SIGTERM are ignored (Python's shutdown would reset them to their defaults, and one
        arriving while Paddle tears down would kill the process without its exit code).

        ``exit_code``: the run was the program itself and the process is about to exit with this code; a signal
        arriving meanwhile ends it at once with that code, streams flushed (while Python code still runs: the
        wait for other threads), or is ignored (from the atexit functions on: the interpreter and Paddle tear
        down), instead of Python's default (a ``KeyboardInterrupt`` at exit, or status -2 / -15). A non-zero
        code means the run ended on its final line: logging is switched off, so nothing comes after it."""
        self.raising = False
        if self.hook is not None and self.hook in sys.meta_path:
            sys.meta_path.remove(self.hook)
        if threading.current_thread() is not threading.main_thread():
            return
        if self._saved_unraisablehook is not None and sys.unraisablehook == self._unraisable:
            # an interrupt that arrives during the shutdown is still never printed as "Exception ignored"
            if self.signum is None:
                sys.unraisablehook = self._saved_unraisablehook
        for signum, handler in self.saved.items():
            if self.signum is not None:
                handler = signal.SIG_IGN
            elif exit_code is not None:
                handler = _exit_now(exit_code)
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if self.signum is None and exit_code is not None:
            # Python resets its handlers to the system default late in its exit (after the atexit functions),
            # then Paddle's C++ parts tear down; a signal there would kill the process with status -2 / -15.
            atexit.register(_ignore_signals)
        if exit_code:
            # the run ended on its one final line (an error, an interrupt): a library's exit hook must not log
            # after it (torch's FakeTensor cache statistics did, at INFO)
            import logging

            logging.disable(logging.CRITICAL)


def _ignore_signals():
    for signum in GUARDED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _exit_now(code):
    """A signal handler for a process that is exiting anyway: flush the streams and exit with ``code``."""

    def handler(signum, frame):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        os._exit(code)

    return handler


_start_up_hook = None  # guard_start_up's AfterImport, until install_signal_guard takes over


def guard_start_up(prog, module_name="__main__"):
    """The first call of a command-line program, before its other imports (``guard_start_up(PROG, __name__)``):
    until :func:`install_signal_guard` (``cli.run``) takes over, SIGINT / SIGTERM end the process at once with
    ``<prog>: interrupted`` and 130 / 143 (nothing has been written that needs cleaning up), instead of Python's
    ``KeyboardInterrupt`` traceback in the middle of an import. Paddle's C++ SIGTERM handler, installed when
    ``paddle`` is imported, is replaced again right after. Nothing happens when ``module_name`` is not
    ``"__main__"``: the program's module imported by a test, or again by a spawned worker process."""
    global _start_up_hook

    if module_name != "__main__" or threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        print_line(f"{prog}: interrupted")
        os._exit(128 + signum)

    def set_handlers():
        for signum in GUARDED_SIGNALS:
            signal.signal(signum, handler)

    set_handlers()
    if "paddle.base" not in sys.modules and _start_up_hook is None:
        _start_up_hook = AfterImport(("paddle.base", "paddle"), set_handlers)
        sys.meta_path.insert(0, _start_up_hook)


def install_signal_guard(prog, debug=False):
    """Install the SIGINT / SIGTERM handling of one run of the command-line program ``prog``; returns the
    :class:`SignalGuard` (its ``signum`` says whether a signal came; call ``quiet()`` then ``restore()``).
    ``debug`` (``--debug``): finalizer errors after an interrupt are printed, not dropped."""
    global _start_up_hook

    if _start_up_hook is not None:
        if _start_up_hook in sys.meta_path:
            sys.meta_path.remove(_start_up_hook)
        _start_up_hook = None
    return SignalGuard(prog, debug).install()


def print_line(line):
    """Write ``line`` to stderr, even when stderr is closed (then nothing is written; the exit code says it)."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class AfterImport:
    """Calls ``callback`` right after each of the modules ``names`` has been imported; then leaves (a
    ``sys.meta_path`` finder; ``importlib.abc`` is not imported for its base classes: it costs 30 ms of start-up)."""

    def __init__(self, names, callback):
        self.waiting, self.callback = set(names), callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.waiting:
            return None
        for finder in sys.meta_path:  # the normal finders find it; this one only wraps its loader
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            spec.loader = _CallbackLoader(spec.loader, lambda: self._done(fullname))
        return spec

    def _done(self, fullname):
        self.waiting.discard(fullname)
        if not self.waiting and self in sys.meta_path:
            sys.meta_path.remove(self)
        self.callback()


class _CallbackLoader:
    """The loader of a module :class:`AfterImport` waits for: the real loader's, then the callback."""

    def __init__(self, inner, callback):
        self._inner, self._callback = inner, callback

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        try:
            self._inner.exec_module(module)
        finally:
            self._callback()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self._inner, name)
