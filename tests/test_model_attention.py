"""Fused and plain attention compute the same function; recompute changes memory, not numbers."""

import numpy as np
import paddle
import paddle.distributed.fleet.utils as fleet_utils
import pytest

from helpers import use_full_last_block

from paddlevideo.modeling import build_model
from paddlevideo.modeling.backbones import vit
from paddlevideo.utils import override_config


def _loss_and_grads(tiny_cfg, overrides, state=None, seed=0):
    override_config(tiny_cfg, overrides)
    model = build_model(tiny_cfg.MODEL)
    if state is not None:
        model.set_state_dict(state)
    model.train()
    rng = np.random.default_rng(seed)
    imgs = paddle.to_tensor(rng.standard_normal((2, 3, 4, 32, 32)).astype(np.float32))
    labels = paddle.to_tensor([[3], [7]], dtype="int64")
    paddle.seed(seed)  # same drop-path draws in both runs
    out = model([imgs, labels], "train")
    out["loss"].backward()
    grads = {key: param.grad.numpy() for key, param in model.named_parameters()}
    return model, float(out["loss"]), grads


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _make_time_embed_nonzero(model):
    # A fresh model has zero time_embed/temporal_fc; random values make every branch matter.
    for key, value in model.state_dict().items():
        if "time_embed" in key or "temporal_fc" in key:
            value.set_value(paddle.randn(value.shape) * 0.5)


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only", "joint_space_time"])
def test_fused_and_plain_agree(tiny_cfg, attention_type, monkeypatch):
    # plain: matmul, the one-pass softmax kernel (vit.scaled_softmax, when built), matmul; fused: Paddle's
    # scaled_dot_product_attention, which CPU eager mode runs only without the fast kernels.
    common = [f"MODEL.backbone.attention_type={attention_type}", "MODEL.backbone.drop_path_rate=0.0"]
    plain, loss_plain, grads_plain = _loss_and_grads(tiny_cfg, common + ["MODEL.backbone.attention_impl=plain"])
    _make_time_embed_nonzero(plain)
    state = _state(plain)
    plain, loss_plain, grads_plain = _loss_and_grads(tiny_cfg, common + ["MODEL.backbone.attention_impl=plain"], state)
    sdpa_calls = []
    sdpa = paddle.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(paddle.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **k: sdpa_calls.append(1) or sdpa(*a, **k))
    monkeypatch.setattr(vit, "fast_cpu_ops", lambda: None)
    fused, loss_fused, grads_fused = _loss_and_grads(tiny_cfg, common + ["MODEL.backbone.attention_impl=fused"], state)
    assert fused.backbone.blocks[0].attn.impl == "fused" and plain.backbone.blocks[0].attn.impl == "plain"
    assert sdpa_calls, "Paddle's scaled_dot_product_attention did not run"
    assert abs(loss_fused - loss_plain) < 1e-5
    assert grads_fused.keys() == grads_plain.keys()
    for key in grads_plain:
        assert np.abs(grads_plain[key]).max() > 0, key  # every parameter takes part
        np.testing.assert_allclose(grads_fused[key], grads_plain[key], atol=1e-5, rtol=0, err_msg=key)


def test_recompute_same_loss_and_grads(tiny_cfg, monkeypatch):
    calls = []
    original = fleet_utils.recompute

    def counting_recompute(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fleet_utils, "recompute", counting_recompute)
    base = ["MODEL.backbone.drop_path_rate=0.2"]
    model, loss_ref, grads_ref = _loss_and_grads(tiny_cfg, base + ["MODEL.backbone.recompute=False"])
    _make_time_embed_nonzero(model)
    state = _state(model)
    _, loss_ref, grads_ref = _loss_and_grads(tiny_cfg, base + ["MODEL.backbone.recompute=False"], state)
    assert not calls
    _, loss_rc, grads_rc = _loss_and_grads(tiny_cfg, base + ["MODEL.backbone.recompute=True"], state)
    assert len(calls) == 2  # one per block
    assert abs(loss_rc - loss_ref) < 1e-6
    for key in grads_ref:
        np.testing.assert_allclose(grads_rc[key], grads_ref[key], atol=1e-6, rtol=0, err_msg=key)


def test_split_qkv_for_export_keeps_weights_and_outputs():
    from paddlevideo.modeling.backbones.vit import Attention

    paddle.seed(3)
    attn = Attention(64, num_heads=4, qkv_bias=True, impl="plain")
    attn.eval()
    x = paddle.randn([2, 9, 64])
    before = attn(x).numpy()
    packed_w, packed_b = attn.qkv.weight.numpy(), attn.qkv.bias.numpy()
    attn.split_qkv()
    assert attn.scale == 0.25  # head_dim 16: a power of two, so the folded q weights are exact
    for index, layer in enumerate(attn.qkv_split):  # column block i of the packed [D, 3D] weight
        factor = attn.scale if index == 0 else 1.0  # the score scale lives in q
        np.testing.assert_array_equal(layer.weight.numpy(), packed_w[:, index * 64:(index + 1) * 64] * factor)
        np.testing.assert_array_equal(layer.bias.numpy(), packed_b[index * 64:(index + 1) * 64] * factor)
    np.testing.assert_allclose(attn(x).numpy(), before, rtol=0, atol=1e-6)
    assert "qkv.weight" in attn.state_dict()  # the packed layer stays for checkpoints


def test_fold_temporal_fc_for_export_keeps_outputs():
    from paddlevideo.modeling.backbones.vit import Block

    paddle.seed(4)
    block = Block(64, num_heads=4, qkv_bias=True, attention_impl="plain")
    for layer in (block.temporal_attn.proj, block.temporal_fc):  # a fresh temporal_fc is zero: make it matter
        layer.weight.set_value(paddle.randn(layer.weight.shape) * 0.3)
        layer.bias.set_value(paddle.randn(layer.bias.shape) * 0.3)
    block.eval()
    x = paddle.randn([2, 1 + 9 * 4, 64])  # CLS + 9 patches x 4 frames
    before = block(x, 4).numpy()
    w_proj, b_proj = block.temporal_attn.proj.weight.numpy(), block.temporal_attn.proj.bias.numpy()
    w_fc, b_fc = block.temporal_fc.weight.numpy(), block.temporal_fc.bias.numpy()
    block.fold_temporal_fc()
    merged = block.temporal_attn.proj
    np.testing.assert_allclose(merged.weight.numpy(), w_proj.astype(np.float64) @ w_fc, rtol=0, atol=1e-6)
    np.testing.assert_allclose(merged.bias.numpy(), b_proj.astype(np.float64) @ w_fc + b_fc, rtol=0, atol=1e-6)
    assert isinstance(block.temporal_fc, paddle.nn.Identity)
    assert not any(key.startswith("temporal_fc.") for key in block.state_dict())
    after = block(x, 4).numpy()
    assert np.abs(before - x.numpy()).max() > 0.1  # the temporal branch changes the output
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-5)
    block.fold_temporal_fc()  # a second call changes nothing
    np.testing.assert_array_equal(block(x, 4).numpy(), after)


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only", "joint_space_time"])
def test_cls_only_last_block_same_loss_and_grads(tiny_cfg, attention_type, monkeypatch):
    # The last block computes only the CLS token's output; forcing the full block (then keeping the CLS
    # token) must give the same loss and the same gradient for every parameter, with drop path on.
    common = [f"MODEL.backbone.attention_type={attention_type}", "MODEL.backbone.drop_path_rate=0.2"]
    model, _, _ = _loss_and_grads(tiny_cfg, common)
    _make_time_embed_nonzero(model)
    state = _state(model)
    _, loss_cls_only, grads_cls_only = _loss_and_grads(tiny_cfg, common, state)
    use_full_last_block(monkeypatch)
    _, loss_full, grads_full = _loss_and_grads(tiny_cfg, common, state)
    assert abs(loss_cls_only - loss_full) < 1e-6
    assert grads_cls_only.keys() == grads_full.keys()
    for key in grads_full:
        assert np.abs(grads_full[key]).max() > 0, key  # the last block's every weight still learns
        np.testing.assert_allclose(grads_cls_only[key], grads_full[key], atol=1e-6, rtol=0, err_msg=key)
