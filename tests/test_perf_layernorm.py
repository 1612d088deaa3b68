"""The fused CPU LayerNorm backward (paddlevideo/modeling/layers/cpu_kernels.py) equals Paddle's and numpy's.

The kernel is compiled with the system C++ compiler on first use; only a machine without one (a user's
fresh clone may lack g++) skips these tests, and says so. With a compiler, a failed build fails here.
"""

import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from helpers import REPO, build_variant, fast_path_calls, needs_compiler, scores_and_grads

from paddlevideo.modeling.layers import cpu_kernels
from paddlevideo.modeling.layers.fast_ops import LayerNorm

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


def test_model_gradients_equal_paddles_layer_norm(tiny_cfg, fast_ops):
    model = build_variant(tiny_cfg)
    backbone = tiny_cfg.MODEL.backbone
    imgs = paddle.randn([2, 3, backbone.num_seg, backbone.img_size, backbone.img_size])
    labels = paddle.to_tensor([[1], [3]])
    with fast_path_calls() as calls:
        _, fused = scores_and_grads(model, imgs, labels)
    # training only: per block norm1, norm2 (and temporal_norm1), then the final norm
    assert calls["layer_norm.kernel"] == 3 * backbone.depth + 1, "the fused path did not run"
    paddle_ops = build_variant(tiny_cfg, model.state_dict(), kernels="paddle")  # Paddle's LayerNorm backward
    with fast_path_calls() as calls:
        _, plain = scores_and_grads(paddle_ops, imgs, labels)
    assert calls["layer_norm.kernel"] == 0
    assert fused.keys() == plain.keys() and any("norm" in k for k in fused)
    for name in fused:
        np.testing.assert_allclose(fused[name], plain[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_switch_off_and_build_failure_fall_back(tmp_path, caplog):
    assert cpu_kernels.build(environ={cpu_kernels.ENV_SWITCH: "0"}, build_dir=str(tmp_path / "off")) is None
    assert not (tmp_path / "off").exists()  # switched off: nothing is built
    broken = tmp_path / "broken.cc"
    broken.write_text("this is not C++;\n")
    with caplog.at_level(logging.WARNING, logger="paddlevideo"):
        module = cpu_kernels.build(sources=[str(broken)], headers=[], environ={}, build_dir=str(tmp_path / "cache"))
    assert module is None  # a broken build warns in one line, naming the compiler's error, and falls back
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert "could not be built" in warnings[0] and "broken.cc" in warnings[0] and "error:" in warnings[0]


NO_COMPILER = """
import paddle
from paddlevideo.common.logger import setup_logger
setup_logger()
from paddlevideo.modeling.layers import cpu_kernels, fast_ops
layer = fast_ops.LayerNorm(8)
layer.train()
x = paddle.randn([4, 8])
x.stop_gradient = False
(layer(x) * paddle.arange(8, dtype="float32")).sum().backward()
expected = paddle.to_tensor(x.numpy(), stop_gradient=False)
(paddle.nn.functional.layer_norm(expected, [8]) * paddle.arange(8, dtype="float32")).sum().backward()
print("RESULT", cpu_kernels.cpu_kernels() is None, fast_ops.call_counts().get("layer_norm.kernel", 0),
      float((x.grad - expected.grad).abs().max()))
"""


def test_machine_without_compiler_trains_with_paddles_kernels(tmp_path):
    # A PATH with a shell's basic tools but no C++ compiler, and an empty extension cache.
    (tmp_path / "bin").mkdir()
    for tool in ("sh", "cat", "grep", "which", "uname"):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), tmp_path / "bin" / tool)
    env = dict(os.environ, PATH=str(tmp_path / "bin"), PADDLE_EXTENSION_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(REPO))
    env.pop(cpu_kernels.ENV_SWITCH, None)
    done = subprocess.run([sys.executable, "-c", NO_COMPILER], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stdout.splitlines() + done.stderr.splitlines() if "could not be built" in line]
    assert len(warnings) == 1 and "g++" in warnings[0], done.stderr  # one line, naming the missing compiler
    result = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("RESULT")][0]
    assert result[:2] == ["True", "0"] and float(result[2]) < 1e-6  # no kernel ran; Paddle's gradient


def test_env_switch_makes_models_use_paddles_ops(tiny_cfg, monkeypatch):
    from paddlevideo.modeling.layers.fast_ops import resolve_kernels

    assert resolve_kernels("auto") == "auto" and build_variant(tiny_cfg).backbone.kernels == "auto"
    monkeypatch.setenv(cpu_kernels.ENV_SWITCH, "0")  # the user's escape hatch: like MODEL.backbone.kernels: paddle
    assert resolve_kernels("auto") == "paddle"
    model = build_variant(tiny_cfg)
    switches = {layer.kernels for layer in model.sublayers() if hasattr(layer, "kernels")}
    assert switches == {"paddle"}
    model.train()
    imgs = paddle.randn([2, 3, 4, 32, 32])
    with fast_path_calls() as calls:
        model([imgs, paddle.to_tensor([[1], [3]])], mode="train")["loss"].backward()
    assert sum(calls.values()) == calls["attention.sdpa"] > 0  # Paddle's ops only
    with pytest.raises(ValueError, match="kernels 'fast' is unknown; use one of auto, paddle"):
        resolve_kernels("fast")


def test_module_name_is_per_environment():
    name = cpu_kernels.module_name()
    assert name.startswith("paddlevideo_cpu_ops_") and name == cpu_kernels.module_name()
    assert cpu_kernels.module_name(prefix="/some/other/venv") != name


def test_module_name_follows_the_kernel_sources(tmp_path):
    # Paddle's own rebuild check hashes the .cc files only: a header edit must still give a new build.
    header = tmp_path / "fast_math.h"
    header.write_text("// one\n")
    before = cpu_kernels.module_name(headers=[str(header)])
    header.write_text("// two\n")
    assert cpu_kernels.module_name(headers=[str(header)]) != before


def test_module_name_is_per_checkout(tmp_path):
    # Paddle's rebuild check records the sources' paths: two checkouts with the same kernels under one name
    # would rebuild each other's module on every start.
    import shutil

    copies = []
    for checkout in ("a", "b"):
        folder = tmp_path / checkout
        folder.mkdir()
        copies.append([shutil.copy(path, folder) for path in cpu_kernels.SOURCES])
    assert cpu_kernels.module_name(sources=copies[0]) != cpu_kernels.module_name(sources=copies[1])
    assert cpu_kernels.module_name(sources=copies[0]) == cpu_kernels.module_name(sources=list(copies[0]))


def test_kernels_share_paddles_openmp_runtime(fast_ops):
    # Linked to GCC's libgomp next to the libiomp5 that Paddle's MKL runs on, the kernels' spinning OpenMP
    # threads took the cores from the next GEMM (the model was slower with the kernels than without).
    import os

    import paddle

    libs = os.path.join(os.path.dirname(os.path.abspath(paddle.__file__)), "libs")
    if not os.path.isfile(os.path.join(libs, "libiomp5.so")):
        pytest.skip("this Paddle ships no libiomp5: the kernels use the compiler's OpenMP")
    _, ldflags = cpu_kernels.build_flags()
    assert "-liomp5" in ldflags and "-fopenmp" not in ldflags
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        loaded = maps.read()
    built = [line.split()[-1] for line in loaded.splitlines() if cpu_kernels.module_name() in line]
    assert built, "the kernels' library is not loaded"
    with open(built[0], "rb") as library:
        assert b"libgomp" not in library.read()  # no DT_NEEDED entry for GCC's OpenMP
