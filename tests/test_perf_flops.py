"""The analytic FLOP counter against the ViT-B figure and an independent count read from the traced program."""

import math

import numpy as np
import paddle
import pytest

from helpers import build_variant

from paddlevideo.modeling.inference import prepare_for_inference
from tools.benchmarks.flops import flops_from_config, timesformer_flops, timesformer_forward_macs


def test_vit_base_8x224_is_392_gflop():
    # One view of 8 x 224 x 224 through ViT-B/16 divided space-time = 392 GFLOP (196 GMAC).
    assert timesformer_flops() == pytest.approx(392e9, rel=2e-3)
    macs = timesformer_forward_macs()
    # Attention scores (q k^T and weights @ v) are ~3% of the work.
    assert 0.025 < macs["attention_scores"] / macs["total"] < 0.035


class _Infer(paddle.nn.Layer):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model([x], mode="infer")


def _program_macs(model, shape):
    """MACs of every matmul and convolution in the static program traced from ``model`` (infer mode) for an
    input of ``shape``: the products the model's code issues, counted from their operands' shapes."""
    spec = paddle.static.InputSpec(shape, "float32", "x")
    traced = paddle.jit.to_static(_Infer(model), input_spec=[spec], full_graph=True)
    program = traced.forward.get_concrete_program(spec)[0].main_program
    macs = 0
    for op in program.global_block().ops:
        if op.name() == "pd_op.matmul":
            a, b = (list(op.operand_source(i).shape) for i in range(2))
            attrs = op.attrs()
            if attrs["transpose_x"]:
                a[-2:] = a[-1:-3:-1]
            if attrs["transpose_y"]:
                b[-2:] = b[-1:-3:-1]
            assert a[-1] == b[-2], (a, b)
            batch = np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
            macs += math.prod(batch) * a[-2] * a[-1] * b[-1]
        elif op.name() == "pd_op.conv2d":
            weight = list(op.operand_source(1).shape)  # [out, in, kh, kw]
            macs += math.prod(op.result(0).shape) * math.prod(weight[1:])
    return macs


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only", "joint_space_time"])
def test_counter_matches_the_traced_program(tiny_cfg, attention_type):
    tiny_cfg.MODEL.backbone.attention_type = attention_type
    model = build_variant(tiny_cfg)
    for key, value in model.state_dict().items():  # a fresh temporal_fc is zero: make every branch matter
        if "temporal_fc" in key or "time_embed" in key:
            value.set_value(paddle.randn(value.shape) * 0.3)
    model.eval()
    backbone = tiny_cfg.MODEL.backbone
    shape = [1, 3, backbone.num_seg, backbone.img_size, backbone.img_size]
    assert 2 * _program_macs(model, shape) == flops_from_config(tiny_cfg.MODEL, executed=True)

    # The nominal count: the last block computes every token's output too (then the CLS token is kept).
    nominal = build_variant(tiny_cfg, model.state_dict(), cls_only_last_block=False)
    nominal.eval()
    assert 2 * _program_macs(nominal, shape) == flops_from_config(tiny_cfg.MODEL) > 2 * _program_macs(model, shape)
    imgs = paddle.randn(shape)
    with paddle.no_grad():  # the CLS-only last block is exact
        np.testing.assert_allclose(model([imgs], mode="infer").numpy(), nominal([imgs], mode="infer").numpy(),
                                   rtol=0, atol=1e-5)

    # The exported form: temporal_fc merged into the temporal projection.
    folded = flops_from_config(tiny_cfg.MODEL, executed=True, temporal_fc_folded=True)
    assert 2 * _program_macs(prepare_for_inference(model), shape) == folded


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
