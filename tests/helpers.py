"""Small helpers shared by test modules (fixtures live in conftest.py)."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_tool(relative):
    """Import a script under ``tools/`` (not a package) as a module, e.g. ``load_tool("tools/predict.py")``."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem + "_tool", REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
