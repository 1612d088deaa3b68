"""The fused CPU LayerNorm backward (paddlevideo/modeling/fast_cpu_ops.py) equals Paddle's and numpy's.

The kernel is compiled with the system C++ compiler on first use; only a machine without one (a user's
fresh clone may lack g++) skips these tests, and says so. With a compiler, a failed build fails here.
"""

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from helpers import needs_compiler, scores_and_grads

from paddlevideo.modeling import build_model
from paddlevideo.modeling import fast_cpu_ops as ops_module
from paddlevideo.modeling.backbones import vit

pytestmark = needs_compiler


def numpy_layer_norm_grads(x, w, dy, eps):
    """Textbook LayerNorm backward over the last axis, float64."""
    x, w, dy = (a.astype(np.float64) for a in (x, w, dy))
    mean = x.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    g = dy * w
    dx = rstd * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    rows = dy.reshape(-1, dy.shape[-1])
    return dx, (rows * xhat.reshape(rows.shape)).sum(0), rows.sum(0)


@pytest.mark.parametrize("shape", [(2, 5, 64), (1569, 768), (3, 1)])
def test_kernel_matches_numpy_and_paddle(fast_ops, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    w = (rng.random(shape[-1]) + 0.5).astype(np.float32)
    b = rng.standard_normal(shape[-1]).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    eps = 1e-6
    fused = [t.numpy() for t in fast_ops.pv_layer_norm_backward(paddle.to_tensor(x), paddle.to_tensor(w),
                                                             paddle.to_tensor(dy), eps)]
    xt, wt, bt = (paddle.to_tensor(a, stop_gradient=False) for a in (x, w, b))
    F.layer_norm(xt, [shape[-1]], wt, bt, eps).backward(paddle.to_tensor(dy))
    for name, got, reference, paddle_grad in zip(("dx", "dweight", "dbias"), fused,
                                                  numpy_layer_norm_grads(x, w, dy, eps),
                                                  (xt.grad, wt.grad, bt.grad)):
        scale = max(1.0, float(np.abs(reference).max()))
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-5 * scale, err_msg=name)
        np.testing.assert_allclose(got, paddle_grad.numpy(), rtol=0, atol=1e-5 * scale, err_msg=name)


def test_model_gradients_equal_paddles_layer_norm(tiny_cfg, fast_ops, monkeypatch):
    model = build_model(tiny_cfg.MODEL)
    backbone = tiny_cfg.MODEL.backbone
    imgs = paddle.randn([2, 3, backbone.num_seg, backbone.img_size, backbone.img_size])
    labels = paddle.to_tensor([[1], [3]])
    calls = []
    original = vit._LayerNormFunction.apply
    monkeypatch.setattr(vit._LayerNormFunction, "apply", lambda *a: calls.append(1) or original(*a))
    _, fused = scores_and_grads(model, imgs, labels)
    assert calls, "the fused path did not run"
    monkeypatch.setattr(vit, "fast_cpu_ops", lambda: None)  # Paddle's own LayerNorm backward (and other ops)
    _, plain = scores_and_grads(model, imgs, labels)
    assert fused.keys() == plain.keys() and any("norm" in k for k in fused)
    for name in fused:
        np.testing.assert_allclose(fused[name], plain[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_switch_off_and_build_failure_fall_back(monkeypatch, caplog):
    monkeypatch.setattr(ops_module, "_built", {})
    monkeypatch.setenv(ops_module.ENV_SWITCH, "0")
    assert ops_module.fast_cpu_ops() is None
    monkeypatch.setattr(ops_module, "_built", {})
    monkeypatch.delenv(ops_module.ENV_SWITCH)
    monkeypatch.setattr(ops_module, "SOURCES", ["/nonexistent/kernel.cc"])
    monkeypatch.setattr(ops_module, "module_name", lambda: "paddlevideo_cpu_ops_test_broken")  # keep the real cache
    assert ops_module.fast_cpu_ops() is None  # a broken build warns and falls back
    layer = vit.LayerNorm(8)
    layer.train()
    x = paddle.randn([4, 8])
    x.stop_gradient = False
    layer(x).sum().backward()  # Paddle's LayerNorm, no fused kernel
    assert x.grad is not None


def test_module_name_is_per_environment(monkeypatch):
    name = ops_module.module_name()
    assert name.startswith("paddlevideo_cpu_ops_") and name == ops_module.module_name()
    monkeypatch.setattr(ops_module.sys, "prefix", "/some/other/venv")
    assert ops_module.module_name() != name


def test_module_name_follows_the_kernel_sources(monkeypatch, tmp_path):
    # Paddle's own rebuild check hashes the .cc files only: a header edit must still give a new build.
    header = tmp_path / "fast_math.h"
    header.write_text("// one\n")
    monkeypatch.setattr(ops_module, "HEADERS", [str(header)])
    before = ops_module.module_name()
    header.write_text("// two\n")
    assert ops_module.module_name() != before


def test_kernels_share_paddles_openmp_runtime(fast_ops):
    # Linked to GCC's libgomp next to the libiomp5 that Paddle's MKL runs on, the kernels' spinning OpenMP
    # threads took the cores from the next GEMM (the model was slower with the kernels than without).
    import os

    import paddle

    libs = os.path.join(os.path.dirname(os.path.abspath(paddle.__file__)), "libs")
    if not os.path.isfile(os.path.join(libs, "libiomp5.so")):
        pytest.skip("this Paddle ships no libiomp5: the kernels use the compiler's OpenMP")
    _, ldflags = ops_module.build_flags()
    assert "-liomp5" in ldflags and "-fopenmp" not in ldflags
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        loaded = maps.read()
    built = [line.split()[-1] for line in loaded.splitlines() if ops_module.module_name() in line]
    assert built, "the kernels' library is not loaded"
    with open(built[0], "rb") as library:
        assert b"libgomp" not in library.read()  # no DT_NEEDED entry for GCC's OpenMP
