"""CPU kernels Paddle lacks, as Paddle custom C++ operators built when a model is built; Paddle's ops otherwise.

Four kernels (docs/benchmarks.md has their timings): the LayerNorm backward (``csrc/layer_norm_backward.cc``),
the exact GELU forward and backward (``csrc/gelu.cc``), the attention's scaled softmax forward and backward
(``csrc/softmax.cc``) and multi-head attention from the packed qkv projection, forward and backward
(``csrc/attention.cc``). :mod:`.fast_ops` decides where they run.

Building a layer that uses them (``kernels: auto`` on a CPU device) compiles them with the system C++ compiler (g++ with OpenMP, once per
Python environment, in Paddle's extension cache ``~/.cache/paddle_extensions`` or ``$PADDLE_EXTENSION_DIR``).
Processes of one launch build them once (a file lock). If they cannot be built (no compiler, no OpenMP), a
one-line warning says so and Paddle's own kernels run: same numbers, slower. ``PADDLEVIDEO_FAST_CPU_OPS=0``
skips the build (and makes every model use Paddle's ops, like ``MODEL.backbone.kernels: paddle``).

Nothing is built or imported at import time; :func:`cpu_kernels` does it on first call (when a model is built),
never a forward.
"""

import contextlib
import hashlib
import os
import sys
import tempfile
import threading

from ...runtime import redirect_output
from ...common.logger import get_logger

ENV_SWITCH = "PADDLEVIDEO_FAST_CPU_OPS"
CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc")
SOURCES = tuple(os.path.join(CSRC, name) for name in ("layer_norm_backward.cc", "gelu.cc", "softmax.cc",
                                                      "attention.cc"))
HEADERS = (os.path.join(CSRC, "fast_math.h"),)
# Portable flags (no -march=native): the cache may be shared by machines with different CPUs.
CXX_FLAGS = ("-O3", "-fopenmp")

_lock = threading.Lock()
_built = {}


def switched_off(environ=None):
    """True when ``PADDLEVIDEO_FAST_CPU_OPS=0`` is set in ``environ`` (default ``os.environ``)."""
    return (os.environ if environ is None else environ).get(ENV_SWITCH, "1").strip() == "0"


def cpu_kernels():
    """The compiled operator module of this environment (``pv_layer_norm_backward``, ``pv_gelu[_backward]``,
    ``pv_scaled_softmax[_backward]`` and, with Paddle's MKL, ``pv_attention[_backward]``), built once per
    process; None when it is switched off or cannot build."""
    with _lock:
        if "module" not in _built:
            _built["module"] = build()
        return _built["module"]


def loaded_cpu_kernels():
    """The operator module if :func:`cpu_kernels` has built or loaded it in this process, else None (never
    builds: model forwards call this, layers call :func:`cpu_kernels` when they are built)."""
    return _built.get("module")


def module_name(sources=SOURCES, headers=HEADERS, prefix=None):
    """The extension's name, one per Python environment (``prefix``, default ``sys.prefix``), Paddle version,
    build flags, kernel source and source folder: the build cache is shared by every environment of the user,
    a module built against another Paddle must not be loaded, Paddle's own rebuild check does not see the
    header, and that check records the sources' paths, so two checkouts sharing one name would rebuild each
    other's module on every start."""
    import paddle

    folders = sorted({os.path.dirname(os.path.abspath(path)) for path in sources})
    digest = hashlib.sha1(f"{sys.prefix if prefix is None else prefix}|{paddle.__version__}|{build_flags()}|"
                          f"{folders}".encode())
    for path in list(sources) + list(headers):
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


def build(sources=SOURCES, headers=HEADERS, environ=None, build_dir=None):
    """Compile (or load from the cache) the operators of ``sources``; None, with one warning, when that fails.

    Args:
        sources, headers: the kernel files (their content names the module, :func:`module_name`).
        environ: where ``PADDLEVIDEO_FAST_CPU_OPS`` is read (default ``os.environ``); ``0`` builds nothing.
        build_dir: the extension cache (default: Paddle's, ``$PADDLE_EXTENSION_DIR`` or ``~/.cache``).
    """
    if switched_off(environ):
        return None
    with tempfile.TemporaryFile(mode="w+") as build_log:
        try:
            return _load(sources, headers, build_dir, build_log)
        except Exception as err:  # noqa: BLE001 - any build problem means: use Paddle's kernels
            build_log.seek(0)
            # The compiler's first "error:" line, or the failed step's ("CalledProcessError: ... 'which g++'").
            errors = [line.strip() for line in build_log if "error:" in line.lower()]
            reason = errors[0] if errors else (str(err).strip().splitlines() or [type(err).__name__])[0]
            get_logger().warning("fast CPU kernels could not be built (%s); Paddle's own kernels run instead (same "
                                 "results, slower). Install g++ to build them, or set %s=0 to skip this step",
                                 reason[:300], ENV_SWITCH)
            return None


def _load(sources, headers, build_dir, build_log):
    import warnings

    with warnings.catch_warnings():  # its import warns when ccache is missing
        warnings.simplefilter("ignore")
        from paddle.utils.cpp_extension import load
        from paddle.utils.cpp_extension.extension_utils import get_build_directory

    name = module_name(sources, headers)
    build_dir = build_dir or get_build_directory()
    os.makedirs(build_dir, exist_ok=True)
    if not os.path.isdir(os.path.join(build_dir, name)):
        get_logger().info("building the fused CPU kernels in %s (once per environment)", build_dir)
    with _file_lock(os.path.join(build_dir, name + ".lock")), redirect_output(build_log):
        cflags, ldflags = build_flags()
        return load(name=name, sources=list(sources), extra_cxx_cflags=cflags, extra_ldflags=ldflags,
                    build_directory=build_dir)


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
