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


def use_full_last_block(monkeypatch):
    """Make the VisionTransformer's last block compute every token's output, like the others, and then keep
    the CLS token: the plain form of ``Block(cls_only=True)``, to compare the two."""
    from paddlevideo.modeling.backbones import vit

    full_forward = vit.Block.forward

    def forward(self, x, num_frames, cls_only=False):
        out = full_forward(self, x, num_frames)
        return out[:, :1] if cls_only else out

    monkeypatch.setattr(vit.Block, "forward", forward)
