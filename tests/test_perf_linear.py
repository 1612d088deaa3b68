"""The backbone's Linear (bias inside the GEMM at inference, BLAS bias gradient in training) equals F.linear."""

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from helpers import build_variant, fast_path_calls

from paddlevideo.modeling.layers import fast_ops


def test_addmm_inference_path_equals_f_linear():
    paddle.seed(0)
    layer = fast_ops.Linear(16, 24)
    layer.bias.set_value(paddle.randn([24]))  # bias starts at 0 in the model; make it count here
    layer.eval()
    for shape in ([5, 16], [2, 7, 16], [2, 3, 4, 16]):
        x = paddle.randn(shape)
        expected = (x.numpy().reshape(-1, 16) @ layer.weight.numpy() + layer.bias.numpy()).reshape(shape[:-1] + [24])
        out = layer(x)
        assert out.shape == shape[:-1] + [24]
        np.testing.assert_allclose(out.numpy(), F.linear(x, layer.weight, layer.bias).numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_model_scores_equal_with_plain_linear(tiny_cfg):
    model = build_variant(tiny_cfg)
    for layer in model.sublayers():
        if isinstance(layer, nn.Linear) and layer.bias is not None:
            layer.bias.set_value(paddle.randn(layer.bias.shape) * 0.1)
    plain_model = build_variant(tiny_cfg, model.state_dict(), kernels="paddle")  # the plain path: F.linear
    model.eval()
    plain_model.eval()
    size = tiny_cfg.MODEL.backbone.img_size
    imgs = paddle.randn([2, 3, tiny_cfg.MODEL.backbone.num_seg, size, size])
    with paddle.no_grad(), fast_path_calls() as calls:
        fast = model([imgs], mode="infer").numpy()
    assert calls["linear.addmm"] > 0
    with paddle.no_grad(), fast_path_calls() as calls:
        plain = plain_model([imgs], mode="infer").numpy()
    assert calls["linear.addmm"] == 0
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-5)
    assert np.abs(fast).max() > 0


def test_training_path_gradients_equal_f_linear():
    paddle.seed(1)
    layer = fast_ops.Linear(16, 24)
    layer.bias.set_value(paddle.randn([24]))
    layer.train()
    x = paddle.randn([2, 7, 16])
    x.stop_gradient = False
    grad_out = paddle.randn([2, 7, 24])
    results = []
    for forward in (layer.forward, lambda t: F.linear(t, layer.weight, layer.bias)):
        out = forward(x)
        out.backward(grad_out)
        results.append([out.numpy(), x.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy()])
        x.clear_gradient()
        layer.clear_gradients()
    # Independent check of the bias gradient: the sum of the output gradient over all rows.
    np.testing.assert_allclose(results[0][3], grad_out.numpy().reshape(-1, 24).sum(0), rtol=1e-5, atol=1e-5)
    for fast, plain in zip(*results):
        np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-5)


def test_model_training_gradients_equal_with_plain_linear(tiny_cfg):
    tiny_cfg.MODEL.backbone.drop_path_rate = 0.0  # deterministic training forward
    model = build_variant(tiny_cfg)
    for layer in model.sublayers():
        if isinstance(layer, nn.Linear) and layer.bias is not None:
            layer.bias.set_value(paddle.randn(layer.bias.shape) * 0.1)
            layer.weight.set_value(paddle.randn(layer.weight.shape) * 0.05)  # temporal_fc starts at zero
    size = tiny_cfg.MODEL.backbone.img_size
    imgs = paddle.randn([2, 3, tiny_cfg.MODEL.backbone.num_seg, size, size])
    labels = paddle.to_tensor([[1], [3]])
    grads = []
    for kernels in ("auto", "paddle"):  # the BLAS bias gradient, then Paddle's F.linear (and other ops)
        variant = build_variant(tiny_cfg, model.state_dict(), kernels=kernels)
        variant.train()
        with fast_path_calls() as calls:
            variant([imgs, labels], mode="train")["loss"].backward()
        assert (calls["linear.blas_grad"] > 0) == (kernels == "auto")
        grads.append({n: p.grad.numpy() for n, p in variant.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 20
    for name in grads[0]:
        np.testing.assert_allclose(grads[0][name], grads[1][name], rtol=0, atol=1e-5, err_msg=name)


def test_training_path_with_frozen_input_or_weights():
    """A raw input (no gradient) and frozen weights, as in fine-tuning, get no gradient and no error."""
    paddle.seed(5)
    layer = fast_ops.Linear(6, 4)
    layer.train()
    x = paddle.randn([3, 5, 6])  # stop_gradient=True, like a clip fed straight to a Linear
    layer.weight.stop_gradient = True
    layer(x).sum().backward()
    assert x.grad is None and layer.weight.grad is None
    rows = x.numpy().reshape(-1, 6)
    np.testing.assert_allclose(layer.bias.grad.numpy(), np.full(4, rows.shape[0], np.float32), rtol=1e-6)

    layer.weight.stop_gradient = False
    layer.bias.stop_gradient = True
    layer.clear_gradients()
    upstream = paddle.randn([3, 5, 4])
    (layer(x) * upstream).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), rows.T @ upstream.numpy().reshape(-1, 4), rtol=1e-5,
                               atol=1e-5)
