"""CPU kernels Paddle lacks, as Paddle custom C++ operators built on first use; Paddle's ops otherwise.

Four kernels (docs/benchmarks.md has their timings): the LayerNorm backward (``csrc/layer_norm_backward.cc``,
~7x Paddle 3.3's CPU ``layer_norm_grad`` on ViT-B rows), the exact GELU forward and backward (``csrc/gelu.cc``,
~6x and ~15x Paddle's CPU gelu), the attention's scaled softmax forward and backward (``csrc/softmax.cc``) and
multi-head attention from the packed qkv projection, forward and backward (``csrc/attention.cc``).
The first eager forward on a CPU compiles them with the system C++ compiler (g++ with OpenMP, ~15 s, once per
Python environment, in Paddle's extension cache ``~/.cache/paddle_extensions`` or ``$PADDLE_EXTENSION_DIR``).
Processes of one launch build them once (a file lock). If they cannot be built (no compiler, no OpenMP), a
one-line warning says so and Paddle's own kernels run: same numbers, slower. ``PADDLEVIDEO_FAST_CPU_OPS=0``
skips the build.

Nothing is built or imported at import time; :func:`fast_cpu_ops` does it on first call.
"""

import contextlib
import os
import sys
import tempfile
import threading

from ..utils.logger import get_logger

ENV_SWITCH = "PADDLEVIDEO_FAST_CPU_OPS"
CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc")
SOURCES = [os.path.join(CSRC, name) for name in ("layer_norm_backward.cc", "gelu.cc", "softmax.cc", "attention.cc")]
HEADERS = [os.path.join(CSRC, "fast_math.h")]
# Portable flags (no -march=native): the cache may be shared by machines with different CPUs.
CXX_FLAGS = ["-O3", "-fopenmp"]

_lock = threading.Lock()
_built = {}


def fast_cpu_ops():
    """The compiled operator module (``pv_layer_norm_backward``, ``pv_gelu[_backward]``,
    ``pv_scaled_softmax[_backward]`` and, with Paddle's MKL, ``pv_attention[_backward]``), or None when it
    is off or cannot build."""
    with _lock:
        if "module" not in _built:
            _built["module"] = _build()
        return _built["module"]


def module_name():
    """The extension's name, one per Python environment, Paddle version and kernel source: the build cache
    is shared by every environment of the user, a module built against another Paddle must not be loaded,
    and Paddle's own rebuild check does not see the header."""
    import hashlib

    import paddle

    digest = hashlib.sha1(f"{sys.prefix}|{paddle.__version__}|{build_flags()}".encode())
    for path in SOURCES + HEADERS:
        with open(path, "rb") as source:
            digest.update(source.read())
    return "paddlevideo_cpu_ops_" + digest.hexdigest()[:10]


def build_flags():
    """(compile flags, link flags) for this Paddle: the portable ``CXX_FLAGS``, and the runtimes Paddle
    already loads, found in ``paddle/libs`` (x86-64 Linux wheels), linked in place of the compiler's:

    - OpenMP: Intel's ``libiomp5`` (it implements GCC's ``GOMP_*`` interface) instead of GCC's libgomp.
      Two OpenMP runtimes in one process each keep their own threads, which spin after every parallel
      region: on a machine with as many threads as cores, the kernels' spinning threads stole the cores
      from MKL's next GEMM, and the model ran slower with the kernels than without them.
    - BLAS: MKL's ``cblas_sgemm`` (``libmklml_intel``) for the attention kernel (``PV_WITH_CBLAS``); without
      it that kernel is left out and the model uses Paddle's ops for attention.
    """
    import paddle

    libs = os.path.join(os.path.dirname(os.path.abspath(paddle.__file__)), "libs")
    cflags, ldflags = list(CXX_FLAGS), []
    if os.path.isfile(os.path.join(libs, "libiomp5.so")):
        ldflags += [f"-L{libs}", "-liomp5"]
    else:
        ldflags.append("-fopenmp")
    if os.path.isfile(os.path.join(libs, "libmklml_intel.so")):
        cflags.append("-DPV_WITH_CBLAS")
        ldflags += [f"-L{libs}", "-lmklml_intel"]
    if any(flag.startswith("-L") for flag in ldflags):
        ldflags.append(f"-Wl,-rpath,{libs}")
    return cflags, ldflags


def _build():
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return None
    name = module_name()
    with tempfile.TemporaryFile(mode="w+") as build_log:
        try:
            import warnings

            with warnings.catch_warnings():  # its import warns when ccache is missing
                warnings.simplefilter("ignore")
                from paddle.utils.cpp_extension import load
                from paddle.utils.cpp_extension.extension_utils import get_build_directory

            build_dir = get_build_directory()
            os.makedirs(build_dir, exist_ok=True)
            if not os.path.isdir(os.path.join(build_dir, name)):
                get_logger().info("building the fused CPU kernels in %s (once per environment, ~15 s)", build_dir)
            with _file_lock(os.path.join(build_dir, name + ".lock")), _output_to(build_log):
                cflags, ldflags = build_flags()
                return load(name=name, sources=SOURCES, extra_cxx_cflags=cflags, extra_ldflags=ldflags)
        except Exception as err:  # noqa: BLE001 - any build problem means: use Paddle's kernels
            build_log.seek(0)
            errors = [line.strip() for line in build_log if "error" in line.lower()]
            reason = errors[0] if errors else (str(err).strip().splitlines() or [type(err).__name__])[0]
            get_logger().warning("fast CPU kernels could not be built (%s); Paddle's own kernels run instead (same "
                                 "results, slower). Install g++ to build them, or set %s=0 to skip this step",
                                 reason[:300], ENV_SWITCH)
            return None


@contextlib.contextmanager
def _file_lock(path):
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _output_to(log):
    """Send this process's stdout/stderr (the build runs setup.py in a child process that inherits them,
    and the compiler's commands are logged) to ``log`` meanwhile."""
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
