"""Dense view ops (FLAGS_use_stride_kernel off, set by configure_cpu) give the same model as strided views."""

import numpy as np
import paddle
import pytest

from paddlevideo.modeling.builder import build_model
from paddlevideo.runtime import STRIDE_FLAG


def _forward_and_grads(cfg, imgs, labels, strided):
    previous = paddle.get_flags([STRIDE_FLAG])[STRIDE_FLAG]
    paddle.set_flags({STRIDE_FLAG: strided})
    try:
        paddle.seed(0)
        model = build_model(cfg.MODEL)
        # temporal_fc starts at zero, which would zero the temporal branch's gradients: randomise it.
        rng = np.random.RandomState(1)
        for block in model.backbone.blocks:
            weight = block.temporal_fc.weight
            weight.set_value(rng.normal(0, 0.02, weight.shape).astype("float32"))
        model.eval()  # no dropout / drop-path randomness; gradients still flow
        with paddle.no_grad():
            scores = model([paddle.to_tensor(imgs)], mode="infer").numpy()
        loss = model([paddle.to_tensor(imgs), paddle.to_tensor(labels)], mode="valid")["loss"]
        loss.backward()
        grads = {name: p.grad.numpy() for name, p in model.named_parameters() if p.grad is not None}
    finally:
        paddle.set_flags({STRIDE_FLAG: previous})
    return scores, float(loss), grads


@pytest.mark.parametrize("attention_impl", ["fused", "plain"])
def test_dense_views_equal_strided_views(tiny_cfg, attention_impl):
    tiny_cfg.MODEL.backbone.attention_impl = attention_impl
    rng = np.random.RandomState(0)
    size = tiny_cfg.MODEL.backbone.img_size
    imgs = rng.standard_normal((2, 3, tiny_cfg.MODEL.backbone.num_seg, size, size)).astype("float32")
    labels = np.array([[1], [7]], dtype="int64")
    strided = _forward_and_grads(tiny_cfg, imgs, labels, strided=True)
    dense = _forward_and_grads(tiny_cfg, imgs, labels, strided=False)
    np.testing.assert_allclose(dense[0], strided[0], rtol=0, atol=1e-5)
    assert dense[1] == pytest.approx(strided[1], abs=1e-5)
    assert dense[2].keys() == strided[2].keys() and len(dense[2]) > 10
    for name in strided[2]:
        np.testing.assert_allclose(dense[2][name], strided[2][name], rtol=0, atol=1e-5, err_msg=name)
