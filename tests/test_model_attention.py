"""Fused and plain attention compute the same function; recompute changes memory, not numbers."""

import numpy as np
import paddle
import paddle.distributed.fleet.utils as fleet_utils
import pytest

from paddlevideo.modeling import build_model
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
def test_fused_and_plain_agree(tiny_cfg, attention_type):
    common = [f"MODEL.backbone.attention_type={attention_type}", "MODEL.backbone.drop_path_rate=0.0"]
    plain, loss_plain, grads_plain = _loss_and_grads(tiny_cfg, common + ["MODEL.backbone.attention_impl=plain"])
    _make_time_embed_nonzero(plain)
    state = _state(plain)
    plain, loss_plain, grads_plain = _loss_and_grads(tiny_cfg, common + ["MODEL.backbone.attention_impl=plain"], state)
    fused, loss_fused, grads_fused = _loss_and_grads(tiny_cfg, common + ["MODEL.backbone.attention_impl=fused"], state)
    assert fused.backbone.blocks[0].attn.impl == "fused" and plain.backbone.blocks[0].attn.impl == "plain"
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
    for index, layer in enumerate(attn.qkv_split):  # column block i of the packed [D, 3D] weight
        np.testing.assert_array_equal(layer.weight.numpy(), packed_w[:, index * 64:(index + 1) * 64])
        np.testing.assert_array_equal(layer.bias.numpy(), packed_b[index * 64:(index + 1) * 64])
    np.testing.assert_allclose(attn(x).numpy(), before, rtol=0, atol=1e-6)
    assert "qkv.weight" in attn.state_dict()  # the packed layer stays for checkpoints
