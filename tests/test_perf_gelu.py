"""The fused CPU exact-GELU kernels (paddlevideo/modeling/layers/csrc/gelu.cc) equal float64 math and Paddle's gelu.

Built with the system C++ compiler on first use, like the LayerNorm kernel: only a machine without one skips
these tests, and says so. With a compiler, a failed build fails here.
"""

import math

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from helpers import build_variant, fast_path_calls, needs_compiler, scores_and_grads

from paddlevideo.modeling.layers import fast_ops as layer_ops

pytestmark = needs_compiler


def float64_gelu(x):
    """(GELU(x), GELU'(x)) in float64 from math.erf, element by element."""
    x = x.astype(np.float64)
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return x * cdf, cdf + x * pdf


def sample_inputs():
    rng = np.random.default_rng(0)
    # A dense sweep over the whole interesting range, activations as a trained MLP makes them, and edges;
    # 1000003 elements: not a multiple of any vector width or thread chunk.
    return np.concatenate([np.linspace(-15.0, 15.0, 600_001), rng.standard_normal(399_990) * 3.0,
                           [0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 40.0, -40.0, 1e6, -1e6, 3.4e38, -3.4e38,
                            5e-39]]).astype(np.float32)


def test_forward_and_backward_match_float64_and_paddle(fast_ops):
    x = sample_inputs()
    dy = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    y = fast_ops.pv_gelu(paddle.to_tensor(x)).numpy()
    dx = fast_ops.pv_gelu_backward(paddle.to_tensor(x), paddle.to_tensor(dy)).numpy()
    y64, slope64 = float64_gelu(x)
    scale = np.maximum(1.0, np.abs(x))  # float32 rounding of x * Phi(x) grows with |x|
    assert np.max(np.abs(y - y64) / scale) < 4e-7
    assert np.max(np.abs(dx - dy * slope64)) < 1e-6

    xt = paddle.to_tensor(x, stop_gradient=False)
    F.gelu(xt, approximate=False).backward(paddle.to_tensor(dy))
    paddle_y = F.gelu(paddle.to_tensor(x), approximate=False).numpy()
    # Paddle's own gelu overflows at |x| ~ 3e38 (inf forward, nan backward); float64 above covers those.
    finite = np.abs(x) < 1e30
    assert np.max((np.abs(y - paddle_y) / scale)[finite]) < 5e-7
    assert np.max(np.abs(dx[finite] - xt.grad.numpy()[finite])) < 1e-6


def test_nan_propagates(fast_ops):
    # A diverged step must still produce a NaN loss (the trainer stops on it).
    x = paddle.to_tensor(np.array([np.nan, 1.0, -np.nan], dtype=np.float32))
    assert np.isnan(fast_ops.pv_gelu(x).numpy()[[0, 2]]).all()
    assert np.isnan(fast_ops.pv_gelu_backward(x, paddle.ones_like(x)).numpy()[[0, 2]]).all()


def test_layer_routes_eager_cpu_float32_only(fast_ops):
    x = paddle.randn([3, 7])
    with fast_path_calls() as calls:
        np.testing.assert_allclose(layer_ops.gelu(x).numpy(), F.gelu(x).numpy(), rtol=0, atol=1e-6)
    assert calls["gelu.kernel"] == 1
    with fast_path_calls() as calls:
        layer_ops.gelu(x.astype("float64"))  # other dtypes: Paddle's gelu
        layer_ops.gelu(x, kernels="paddle")  # the switch: Paddle's gelu
    assert calls["gelu.kernel"] == 0


def test_model_outputs_and_gradients_equal_paddles_gelu(tiny_cfg, fast_ops):
    model = build_variant(tiny_cfg)
    backbone = tiny_cfg.MODEL.backbone
    imgs = paddle.randn([2, 3, backbone.num_seg, backbone.img_size, backbone.img_size])
    labels = paddle.to_tensor([[1], [3]])

    with fast_path_calls() as calls:
        fused_scores, fused = scores_and_grads(model, imgs, labels)
    assert calls["gelu.kernel"] == 2 * backbone.depth, "the fused GELU did not run in training and inference"
    paddle_ops = build_variant(tiny_cfg, model.state_dict(), kernels="paddle")  # Paddle's gelu (and other ops)
    with fast_path_calls() as calls:
        plain_scores, plain = scores_and_grads(paddle_ops, imgs, labels)
    assert sum(calls.values()) == calls["attention.sdpa"] > 0  # no fast path at all
    np.testing.assert_allclose(fused_scores, plain_scores, rtol=0, atol=1e-5)
    assert fused.keys() == plain.keys() and any("fc1" in k for k in fused)
    for name in fused:
        np.testing.assert_allclose(fused[name], plain[name], rtol=1e-4, atol=1e-6, err_msg=name)
