"""The backbone's Linear (bias added inside the GEMM at CPU inference) equals plain F.linear."""

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddlevideo.modeling.backbones import vit
from paddlevideo.modeling.builder import build_model


def test_addmm_inference_path_equals_f_linear():
    paddle.seed(0)
    layer = vit.Linear(16, 24)
    layer.bias.set_value(paddle.randn([24]))  # bias starts at 0 in the model; make it count here
    layer.eval()
    for shape in ([5, 16], [2, 7, 16], [2, 3, 4, 16]):
        x = paddle.randn(shape)
        expected = (x.numpy().reshape(-1, 16) @ layer.weight.numpy() + layer.bias.numpy()).reshape(shape[:-1] + [24])
        out = layer(x)
        assert out.shape == shape[:-1] + [24]
        np.testing.assert_allclose(out.numpy(), F.linear(x, layer.weight, layer.bias).numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_model_scores_equal_with_plain_linear(tiny_cfg, monkeypatch):
    model = build_model(tiny_cfg.MODEL)
    for layer in model.sublayers():
        if isinstance(layer, nn.Linear) and layer.bias is not None:
            layer.bias.set_value(paddle.randn(layer.bias.shape) * 0.1)
    model.eval()
    size = tiny_cfg.MODEL.backbone.img_size
    imgs = paddle.randn([2, 3, tiny_cfg.MODEL.backbone.num_seg, size, size])
    with paddle.no_grad():
        fast = model([imgs], mode="infer").numpy()
        monkeypatch.setattr(vit.Linear, "forward", nn.Linear.forward)  # the plain path: F.linear
        plain = model([imgs], mode="infer").numpy()
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-5)
    assert np.abs(fast).max() > 0
