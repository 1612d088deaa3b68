"""The one-pass CPU scaled softmax (paddlevideo/modeling/layers/csrc/softmax.cc) equals float64 math and Paddle's.

Built with the system C++ compiler on first use, like the other fused kernels: only a machine without one
skips these tests, and says so. With a compiler, a failed build fails here.
"""

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from helpers import fast_path_calls, needs_compiler

from paddlevideo.modeling.layers import fast_ops as layer_ops

pytestmark = needs_compiler


def float64_softmax(x, scale, dy):
    """(softmax(scale * x), its input gradient for dy) over the last axis, float64."""
    z = scale * x.astype(np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    y = e / e.sum(-1, keepdims=True)
    dy = dy.astype(np.float64)
    return y, y * (dy - (dy * y).sum(-1, keepdims=True)) * scale


# Row lengths of TimeSformer's attention (8 frames, 197 tokens), a vector-width remainder, and 1.
@pytest.mark.parametrize("shape", [(4, 3, 197, 197), (30, 3, 8, 8), (5, 1, 17), (7, 1)])
def test_forward_and_backward_match_float64_and_paddle(fast_ops, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 20).astype(np.float32)
    x.reshape(-1, shape[-1])[::3, 0] = 300.0  # rows with one dominant score: exp(-big) must give 0, not nan
    dy = rng.standard_normal(shape).astype(np.float32)
    scale = 0.125
    y = fast_ops.pv_scaled_softmax(paddle.to_tensor(x), scale).numpy()
    dx = fast_ops.pv_scaled_softmax_backward(paddle.to_tensor(y), paddle.to_tensor(dy), scale).numpy()
    y64, dx64 = float64_softmax(x, scale, dy)
    np.testing.assert_allclose(y, y64, rtol=0, atol=1e-6)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=0, atol=1e-5)
    np.testing.assert_allclose(dx, dx64, rtol=0, atol=1e-6)

    xt = paddle.to_tensor(x, stop_gradient=False)
    F.softmax(xt * scale, axis=-1).backward(paddle.to_tensor(dy))
    np.testing.assert_allclose(y, F.softmax(paddle.to_tensor(x) * scale, axis=-1).numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-6)


def test_nan_row_stays_nan_and_bad_scale_is_refused(fast_ops):
    x = np.zeros((2, 8), dtype=np.float32)
    x[0, 3] = np.nan
    y = fast_ops.pv_scaled_softmax(paddle.to_tensor(x), 1.0).numpy()
    assert np.isnan(y[0]).all() and np.allclose(y[1], 1 / 8)
    with pytest.raises(Exception, match="scale must be positive"):
        fast_ops.pv_scaled_softmax(paddle.to_tensor(x), 0.0)


def test_function_routes_eager_cpu_float32_and_matches_reference(fast_ops):
    x = paddle.randn([2, 4, 9, 9])
    x.stop_gradient = False
    with fast_path_calls() as calls:
        y = layer_ops.scaled_softmax(x, 0.5)
    assert calls["softmax.kernel"] == 1
    y.backward(paddle.ones_like(y) * paddle.arange(9, dtype="float32"))
    reference = paddle.to_tensor(x.numpy(), stop_gradient=False)
    expected = F.softmax(reference * 0.5, axis=-1)
    expected.backward(paddle.ones_like(expected) * paddle.arange(9, dtype="float32"))
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), reference.grad.numpy(), rtol=0, atol=1e-6)
    with fast_path_calls() as calls:
        layer_ops.scaled_softmax(x.astype("float64"), 0.5)  # other dtypes: Paddle's softmax
        np.testing.assert_allclose(layer_ops.scaled_softmax(x, 0.5, kernels="paddle").numpy(), y.numpy(), rtol=0,
                                   atol=1e-6)  # the switch: Paddle's softmax, same values
    assert calls["softmax.kernel"] == 0
