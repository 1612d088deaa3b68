"""The analytic FLOP counter against the spec's figure and an independent count by layer hooks."""

import numpy as np
import paddle
import paddle.nn as nn
import pytest

from helpers import use_full_last_block

from paddlevideo.modeling.backbones import vit
from paddlevideo.modeling.backbones.vit import linear
from paddlevideo.modeling.builder import build_model
from paddlevideo.utils.flops import flops_from_config, timesformer_flops, timesformer_forward_macs


def test_vit_base_8x224_is_392_gflop():
    # Spec 7: one view of 8 x 224 x 224 through ViT-B/16 divided space-time = 392 GFLOP (196 GMAC).
    assert timesformer_flops() == pytest.approx(392e9, rel=2e-3)
    macs = timesformer_forward_macs()
    # Spec 7: attention scores are ~3% of the work.
    assert 0.025 < macs["attention_scores"] / macs["total"] < 0.035


def _hook_count(model, imgs):
    """(MACs of every Linear, Conv2D and attention product, read from the shapes seen at run time; scores).

    The backbone's Linear products are counted where they all run, ``vit.linear`` (the last block calls it
    directly with the q and k/v column blocks of ``qkv``), the head's by a layer hook.
    """
    counted = []

    def count_linear(x, weight, bias, training):
        counted.append(x.numel().item() // x.shape[-1] * weight.shape[0] * weight.shape[1])
        return linear(x, weight, bias, training)

    def linear_hook(layer, inputs, output):
        rows = output.numel().item() // output.shape[-1]
        counted.append(rows * layer.weight.shape[0] * layer.weight.shape[1])

    def conv_hook(layer, inputs, output):
        weight = layer.weight  # [out, in, kh, kw]
        counted.append(output.numel().item() * weight.shape[1] * weight.shape[2] * weight.shape[3])

    def attention_hook(layer, inputs, output):
        batch, length, dim = inputs[0].shape
        queries = output.shape[1]
        counted.append(2 * batch * queries * length * dim)  # q k^T and weights @ v

    handles = []
    for layer in model.sublayers():
        if isinstance(layer, nn.Linear) and not isinstance(layer, vit.Linear):
            handles.append(layer.register_forward_post_hook(linear_hook))
        elif isinstance(layer, nn.Conv2D):
            handles.append(layer.register_forward_post_hook(conv_hook))
        elif isinstance(layer, vit.Attention):
            handles.append(layer.register_forward_post_hook(attention_hook))
    model.eval()
    original = vit.linear
    vit.linear = count_linear
    try:
        with paddle.no_grad():
            scores = model([imgs], mode="infer").numpy()
    finally:
        vit.linear = original
        for handle in handles:
            handle.remove()
    return sum(counted), scores


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only", "joint_space_time"])
def test_counter_matches_layer_hooks(tiny_cfg, attention_type, monkeypatch):
    tiny_cfg.MODEL.backbone.attention_type = attention_type
    model = build_model(tiny_cfg.MODEL)
    for key, value in model.state_dict().items():  # a fresh temporal_fc is zero: make every branch matter
        if "temporal_fc" in key or "time_embed" in key:
            value.set_value(paddle.randn(value.shape) * 0.3)
    backbone = tiny_cfg.MODEL.backbone
    imgs = paddle.randn([1, 3, backbone.num_seg, backbone.img_size, backbone.img_size])
    executed, scores = _hook_count(model, imgs)
    assert 2 * executed == flops_from_config(tiny_cfg.MODEL, executed=True)

    # The nominal count: the last block computes every token's output too (then the CLS token is kept).
    use_full_last_block(monkeypatch)
    nominal, nominal_scores = _hook_count(model, imgs)
    assert 2 * nominal == flops_from_config(tiny_cfg.MODEL) > 2 * executed
    np.testing.assert_allclose(scores, nominal_scores, rtol=0, atol=1e-5)  # the CLS-only last block is exact


def test_executed_vit_base_counts():
    nominal = timesformer_flops()
    executed = timesformer_flops(executed=True)
    exported = timesformer_flops(executed=True, temporal_fc_folded=True)
    # The last block without its patch outputs: MLP on 1 token, 8 spatial queries (ViT-B: -5.0%).
    assert 0.945 < executed / nominal < 0.955
    # temporal_fc merged into the temporal projection: one [1568, 768] x [768, 768] GEMM less per block.
    assert nominal - exported - (nominal - executed) == 12 * 2 * 1568 * 768 * 768


def test_train_flops_are_forward_plus_twice_backward_products():
    macs = timesformer_forward_macs()
    # Backward: input and weight gradients of every product, but no input gradient for the video.
    expected = 2 * macs["total"] + 2 * (2 * macs["total"] - macs["patch_embed"])
    assert timesformer_flops(train=True) == expected


def test_unknown_attention_type_is_rejected():
    with pytest.raises(ValueError, match="attention_type"):
        timesformer_flops(attention_type="axial")
