"""Small helpers shared by test modules (fixtures live in conftest.py)."""

import importlib.util
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_tool(relative):
    """Import a script under ``tools/`` (not a package) as a module, e.g. ``load_tool("tools/predict.py")``."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem + "_tool", REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The fused CPU kernels (paddlevideo/modeling/fast_cpu_ops.py) are compiled on first use: only a machine
# without a C++ compiler (a user's fresh clone may lack g++) skips their tests, and says so. With a
# compiler, a failed build fails the tests (the ``fast_ops`` fixture of conftest.py).
needs_compiler = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                    reason="no C++ compiler: the fused CPU kernels cannot be built on this machine")
