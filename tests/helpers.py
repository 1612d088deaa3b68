"""Small helpers shared by test modules (fixtures live in conftest.py)."""

import collections
import contextlib
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_tool(relative):
    """Import a script under ``tools/`` (not a package) as a module, e.g. ``load_tool("tools/predict.py")``.
    ``tools/`` is on ``sys.path`` meanwhile, as for the script itself (its ``import _bootstrap``)."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem + "_tool", REPO / relative)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "tools"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "tools"))
    return module


# The fused CPU kernels (paddlevideo/modeling/layers/cpu_kernels.py) are compiled on first use: only a machine
# without a C++ compiler (a user's fresh clone may lack g++) skips their tests, and says so. With a
# compiler, a failed build fails the tests (the ``fast_ops`` fixture of conftest.py).
needs_compiler = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                    reason="no C++ compiler: the fused CPU kernels cannot be built on this machine")


def scores_and_grads(model, imgs, labels, seed=0):
    """(inference scores, {parameter name: gradient}) of ``model``: one training backward on ``imgs`` /
    ``labels`` with the same drop-path draws for a given ``seed``, then ``model([imgs], mode="infer")``."""
    import paddle

    paddle.seed(seed)
    model.train()
    model.clear_gradients()
    model([imgs, labels], mode="train")["loss"].backward()
    grads = {name: p.grad.numpy().copy() for name, p in model.named_parameters() if p.grad is not None}
    model.eval()
    with paddle.no_grad():
        scores = model([imgs], mode="infer").numpy()
    return scores, grads


def build_variant(cfg, state=None, **backbone):
    """``build_model(cfg.MODEL)`` with backbone switches set (e.g. ``kernels="paddle"``,
    ``cls_only_last_block=False``) and ``state`` loaded when given: the same weights on another code path."""
    import copy

    from paddlevideo.modeling import build_model

    model_cfg = copy.deepcopy(cfg.MODEL)
    model_cfg.backbone.update(backbone)
    model = build_model(model_cfg)
    if state is not None:
        model.set_state_dict(state)
    return model


@contextlib.contextmanager
def fast_path_calls():
    """Count the fast paths taken inside the block: ``with fast_path_calls() as calls: ...``, then
    ``calls["gelu.kernel"]`` (0 for a path not taken); read from the fast-ops module's own counters."""
    from paddlevideo.modeling.layers.fast_ops import call_counts

    before = call_counts()
    calls = collections.Counter()
    try:
        yield calls
    finally:
        calls.update({path: count - before.get(path, 0) for path, count in call_counts().items()})
