"""The analytic FLOP counter against the spec's figure and an independent count by layer hooks."""

import paddle
import paddle.nn as nn
import pytest

from paddlevideo.modeling.backbones.vit import Attention
from paddlevideo.modeling.builder import build_model
from paddlevideo.utils.flops import flops_from_config, timesformer_flops, timesformer_forward_macs


def test_vit_base_8x224_is_392_gflop():
    # Spec 7: one view of 8 x 224 x 224 through ViT-B/16 divided space-time = 392 GFLOP (196 GMAC).
    assert timesformer_flops() == pytest.approx(392e9, rel=2e-3)
    macs = timesformer_forward_macs()
    # Spec 7: attention scores are ~3% of the work.
    assert 0.025 < macs["attention_scores"] / macs["total"] < 0.035


def _hook_count(model, imgs):
    """MACs of every Linear, Conv2D and attention product, read from the shapes seen at run time."""
    counted = []

    def linear_hook(layer, inputs, output):
        rows = output.numel().item() // output.shape[-1]
        counted.append(rows * layer.weight.shape[0] * layer.weight.shape[1])

    def conv_hook(layer, inputs, output):
        weight = layer.weight  # [out, in, kh, kw]
        counted.append(output.numel().item() * weight.shape[1] * weight.shape[2] * weight.shape[3])

    def attention_hook(layer, inputs, output):
        batch, length, dim = inputs[0].shape
        counted.append(2 * batch * length * length * dim)  # q k^T and weights @ v

    for layer in model.sublayers():
        if isinstance(layer, nn.Linear):
            layer.register_forward_post_hook(linear_hook)
        elif isinstance(layer, nn.Conv2D):
            layer.register_forward_post_hook(conv_hook)
        elif isinstance(layer, Attention):
            layer.register_forward_post_hook(attention_hook)
    model.eval()
    with paddle.no_grad():
        model([imgs], mode="infer")
    return sum(counted)


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only", "joint_space_time"])
def test_counter_matches_layer_hooks(tiny_cfg, attention_type):
    tiny_cfg.MODEL.backbone.attention_type = attention_type
    model = build_model(tiny_cfg.MODEL)
    backbone = tiny_cfg.MODEL.backbone
    imgs = paddle.randn([1, 3, backbone.num_seg, backbone.img_size, backbone.img_size])
    assert 2 * _hook_count(model, imgs) == flops_from_config(tiny_cfg.MODEL)


def test_train_flops_are_forward_plus_twice_backward_products():
    macs = timesformer_forward_macs()
    # Backward: input and weight gradients of every product, but no input gradient for the video.
    expected = 2 * macs["total"] + 2 * (2 * macs["total"] - macs["patch_embed"])
    assert timesformer_flops(train=True) == expected


def test_unknown_attention_type_is_rejected():
    with pytest.raises(ValueError, match="attention_type"):
        timesformer_flops(attention_type="axial")
