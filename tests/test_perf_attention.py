"""The CPU attention kernel (paddlevideo/modeling/layers/csrc/attention.cc) equals float64 numpy and Paddle autograd.

Built with the system C++ compiler on first use; it needs the MKL that Paddle's x86-64 Linux wheels ship
(cblas_sgemm). Only a machine without a compiler or without that MKL skips these tests, and says so.
"""

import numpy as np
import paddle
import pytest

from helpers import build_variant, fast_path_calls, needs_compiler

pytestmark = needs_compiler


@pytest.fixture(scope="module")
def ops(fast_ops):
    if not hasattr(fast_ops, "pv_attention"):
        pytest.skip("this Paddle ships no MKL (paddle/libs/libmklml_intel.so): the attention kernel is not built")
    return fast_ops


def composite_attention(qkv, heads, scale):
    """softmax(scale q k^T) v per head from the packed [B, L, 3D] projection, with Paddle ops (any dtype)."""
    batch, length, packed = qkv.shape
    dim = packed // 3
    q, k, v = (t.reshape([batch, length, heads, dim // heads]).transpose([0, 2, 1, 3])
               for t in paddle.split(qkv, 3, axis=-1))
    probs = paddle.nn.functional.softmax(paddle.matmul(q, k, transpose_y=True) * scale, axis=-1)
    return paddle.matmul(probs, v).transpose([0, 2, 1, 3]).reshape([batch, length, dim])


def numpy_attention(qkv, heads, scale):
    """The same in float64 numpy, head by head (an independent loop)."""
    qkv = qkv.astype(np.float64)
    batch, length, packed = qkv.shape
    dim = packed // 3
    head_dim = dim // heads
    out = np.zeros((batch, length, dim))
    for b in range(batch):
        for h in range(heads):
            cols = slice(h * head_dim, (h + 1) * head_dim)
            q, k, v = (qkv[b, :, block * dim:(block + 1) * dim][:, cols] for block in range(3))
            scores = scale * q @ k.T
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            out[b, :, cols] = (weights / weights.sum(-1, keepdims=True)) @ v
    return out


# TimeSformer's spatial (197 tokens) and temporal (8 frames) shapes, small widths; odd sizes.
@pytest.mark.parametrize("batch,length,heads,head_dim", [(2, 197, 2, 64), (30, 8, 3, 16), (1, 5, 1, 3)])
def test_forward_and_backward(ops, batch, length, heads, head_dim):
    rng = np.random.default_rng(0)
    qkv = rng.standard_normal((batch, length, 3 * heads * head_dim)).astype(np.float32)
    dout = rng.standard_normal((batch, length, heads * head_dim)).astype(np.float32)
    scale = head_dim ** -0.5
    out, probs = ops.pv_attention(paddle.to_tensor(qkv), heads, scale, True)
    np.testing.assert_allclose(out.numpy(), numpy_attention(qkv, heads, scale), rtol=0, atol=2e-5)
    np.testing.assert_allclose(probs.numpy().sum(-1), 1.0, rtol=0, atol=1e-5)
    out_no_probs, _ = ops.pv_attention(paddle.to_tensor(qkv), heads, scale, False)  # inference: scratch scores
    np.testing.assert_array_equal(out_no_probs.numpy(), out.numpy())

    dqkv = ops.pv_attention_backward(paddle.to_tensor(qkv), probs, paddle.to_tensor(dout), heads, scale)
    reference = paddle.to_tensor(qkv.astype(np.float64), stop_gradient=False)
    composite_attention(reference, heads, scale).backward(paddle.to_tensor(dout.astype(np.float64)))
    np.testing.assert_allclose(dqkv.numpy(), reference.grad.numpy(), rtol=0, atol=2e-5)


def test_model_routes_fused_attention_to_the_kernel(tiny_cfg, ops):
    # impl fused (the kernel) vs plain (matmul, softmax kernel, matmul): same loss, gradients and scores.
    tiny_cfg.MODEL.backbone.drop_path_rate = 0.0
    imgs = paddle.randn([2, 3, 4, 32, 32])
    labels = paddle.to_tensor([[1], [3]])
    results, calls = {}, {}
    state = None
    for impl in ("fused", "plain"):
        paddle.seed(0)
        model = build_variant(tiny_cfg, state, attention_impl=impl)
        if state is None:
            state = {k: paddle.randn(v.shape) * 0.3 if ("temporal_fc" in k or "time_embed" in k) else v
                     for k, v in model.state_dict().items()}
            model.set_state_dict(state)
        with fast_path_calls() as calls[impl]:
            model.train()
            loss = model([imgs, labels], mode="train")["loss"]
            loss.backward()
            grads = {k: p.grad.numpy() for k, p in model.named_parameters()}
            model.eval()
            results[impl] = (float(loss), grads, model([imgs], mode="infer").numpy())
    # depth 2: both attentions of block 0 and the temporal one of block 1 (its spatial one is CLS-only),
    # in training and in inference
    assert calls["fused"]["attention.kernel"] == 2 * 3 and calls["plain"]["attention.kernel"] == 0
    (loss_f, grads_f, scores_f), (loss_p, grads_p, scores_p) = results["fused"], results["plain"]
    assert abs(loss_f - loss_p) < 1e-5
    np.testing.assert_allclose(scores_f, scores_p, rtol=0, atol=1e-5)
    for key in grads_p:
        np.testing.assert_allclose(grads_f[key], grads_p[key], rtol=0, atol=1e-5, err_msg=key)
