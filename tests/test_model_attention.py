"""Fused and plain attention compute the same function; recompute changes memory, not numbers; the inference
form (prepare_for_inference) and the CLS-only last block change the work, not the numbers."""

import numpy as np
import paddle
import paddle.distributed.fleet.utils as fleet_utils
import pytest

from helpers import fast_path_calls

from paddlevideo.modeling import build_model
from paddlevideo.modeling.backbones.vit import Attention, Block
from paddlevideo.modeling.inference import InferenceAttention, prepare_for_inference
from paddlevideo.config import override_config


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
def test_fused_and_plain_agree(tiny_cfg, attention_type):
    # plain: matmul, the one-pass softmax kernel (when built), matmul; fused with kernels=paddle: Paddle's
    # scaled_dot_product_attention (the CPU attention kernel is compared in tests/test_perf_attention.py).
    common = [f"MODEL.backbone.attention_type={attention_type}", "MODEL.backbone.drop_path_rate=0.0"]
    plain, loss_plain, grads_plain = _loss_and_grads(tiny_cfg, common + ["MODEL.backbone.attention_impl=plain"])
    _make_time_embed_nonzero(plain)
    state = _state(plain)
    plain, loss_plain, grads_plain = _loss_and_grads(tiny_cfg, common + ["MODEL.backbone.attention_impl=plain"], state)
    with fast_path_calls() as calls:
        fused, loss_fused, grads_fused = _loss_and_grads(
            tiny_cfg, common + ["MODEL.backbone.attention_impl=fused", "MODEL.backbone.kernels=paddle"], state)
    assert fused.backbone.blocks[0].attn.impl == "fused" and plain.backbone.blocks[0].attn.impl == "plain"
    assert calls["attention.sdpa"] > 0, "Paddle's scaled_dot_product_attention did not run"
    assert calls["attention.kernel"] == calls["softmax.kernel"] == 0
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


def test_inference_attention_splits_qkv_with_the_scale_in_q():
    paddle.seed(3)
    block = Block(64, num_heads=4, qkv_bias=True, attention_type="space_only", attention_impl="plain")
    block.eval()
    x = paddle.randn([2, 9, 64])
    before = block(x, 1).numpy()
    weights_before = {k: v.numpy().copy() for k, v in block.state_dict().items()}
    packed_w, packed_b = block.attn.qkv.weight.numpy(), block.attn.qkv.bias.numpy()
    prepared = prepare_for_inference(block)
    attn = prepared.attn
    assert isinstance(attn, InferenceAttention) and isinstance(block.attn, Attention)
    assert block.attn.scale == 0.25  # head_dim 16: a power of two, so the folded q weights are exact
    for index, layer in enumerate((attn.q, attn.k, attn.v)):  # column block i of the packed [D, 3D] weight
        factor = 0.25 if index == 0 else 1.0  # the score scale lives in q
        np.testing.assert_array_equal(layer.weight.numpy(), packed_w[:, index * 64:(index + 1) * 64] * factor)
        np.testing.assert_array_equal(layer.bias.numpy(), packed_b[index * 64:(index + 1) * 64] * factor)
    np.testing.assert_allclose(prepared(x, 1).numpy(), before, rtol=0, atol=1e-6)
    np.testing.assert_allclose(prepared.forward_cls(x, 1).numpy(), before[:, :1], rtol=0, atol=1e-6)
    # The trained block is untouched: same layers, same state dict, same outputs.
    assert block.state_dict().keys() == weights_before.keys()
    for key, value in block.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), weights_before[key], err_msg=key)
    np.testing.assert_array_equal(block(x, 1).numpy(), before)


def test_inference_form_merges_temporal_fc_on_a_copy():
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
    prepared = prepare_for_inference(block)
    merged = prepared.temporal_attn.proj
    np.testing.assert_allclose(merged.weight.numpy(), w_proj.astype(np.float64) @ w_fc, rtol=0, atol=1e-6)
    np.testing.assert_allclose(merged.bias.numpy(), b_proj.astype(np.float64) @ w_fc + b_fc, rtol=0, atol=1e-6)
    assert isinstance(prepared.temporal_fc, paddle.nn.Identity)
    assert not any(key.startswith("temporal_fc.") for key in prepared.state_dict())
    after = prepared(x, 4).numpy()
    assert np.abs(before - x.numpy()).max() > 0.1  # the temporal branch changes the output
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-5)
    # The original keeps its temporal_fc, its weights and its outputs; preparing the copy again changes nothing.
    np.testing.assert_array_equal(block.temporal_fc.weight.numpy(), w_fc)
    np.testing.assert_array_equal(block(x, 4).numpy(), before)
    np.testing.assert_array_equal(prepare_for_inference(prepared)(x, 4).numpy(), after)


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only", "joint_space_time"])
def test_cls_only_last_block_same_loss_and_grads(tiny_cfg, attention_type):
    # The last block computes only the CLS token's output; the full block (cls_only_last_block: False, then
    # the CLS token is kept) must give the same loss and the same gradient for every parameter, with drop path on.
    common = [f"MODEL.backbone.attention_type={attention_type}", "MODEL.backbone.drop_path_rate=0.2"]
    model, _, _ = _loss_and_grads(tiny_cfg, common)
    _make_time_embed_nonzero(model)
    state = _state(model)
    _, loss_cls_only, grads_cls_only = _loss_and_grads(tiny_cfg, common, state)
    _, loss_full, grads_full = _loss_and_grads(tiny_cfg, common + ["MODEL.backbone.cls_only_last_block=False"], state)
    assert abs(loss_cls_only - loss_full) < 1e-6
    assert grads_cls_only.keys() == grads_full.keys()
    for key in grads_full:
        assert np.abs(grads_full[key]).max() > 0, key  # the last block's every weight still learns
        np.testing.assert_allclose(grads_cls_only[key], grads_full[key], atol=1e-6, rtol=0, err_msg=key)


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only", "joint_space_time"])
def test_prepare_for_inference_works_on_a_copy(tiny_cfg, attention_type):
    tiny_cfg.MODEL.backbone.attention_type = attention_type
    model = build_model(tiny_cfg.MODEL)
    _make_time_embed_nonzero(model)
    model.train()  # the copy is in eval mode whatever the model's mode; the model keeps its own
    before = {key: value.numpy().copy() for key, value in model.state_dict().items()}
    layer_types = [type(layer) for layer in model.sublayers()]
    prepared = prepare_for_inference(model)
    assert model.training and not prepared.training
    assert [type(layer) for layer in model.sublayers()] == layer_types
    assert not any(isinstance(layer, Attention) for layer in prepared.sublayers())
    assert sum(isinstance(layer, InferenceAttention) for layer in prepared.sublayers()) == (
        2 * 2 if attention_type == "divided_space_time" else 2)
    for param in prepared.parameters():  # nothing shared: changing the copy leaves the model alone
        param.set_value(paddle.zeros_like(param))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key], err_msg=key)
    model.eval()
    prepared = prepare_for_inference(model)
    imgs = paddle.randn([2, 3, 12, 32, 32])  # 3 views, as exported
    with paddle.no_grad():
        np.testing.assert_allclose(prepared([imgs], mode="infer").numpy(), model([imgs], mode="infer").numpy(),
                                   rtol=0, atol=1e-5)


def test_return_attention_keyword_still_reads_the_maps_with_a_warning(tiny_cfg):
    """The 2026-11 call ``backbone(x, return_attention=True)`` gives what ``forward_with_attention`` gives."""
    paddle.seed(0)
    model = build_model(tiny_cfg.MODEL)
    model.eval()
    x = paddle.randn([1, 3, 4, 32, 32])
    feature, maps = model.backbone.forward_with_attention(x)
    with pytest.warns(DeprecationWarning, match="forward_with_attention"):
        old_feature, old_maps = model.backbone(x, return_attention=True)
    np.testing.assert_array_equal(old_feature.numpy(), feature.numpy())
    assert [sorted(m) for m in old_maps] == [sorted(m) for m in maps] and len(maps) == 2
    for old, new in zip(old_maps, maps):
        for name in new:
            np.testing.assert_array_equal(old[name].numpy(), new[name].numpy())
    np.testing.assert_allclose(model.backbone(x).numpy(), feature.numpy(), atol=1e-5)  # one return type otherwise
