"""Head loss/accuracy against numpy, and the reference initialisation of a fresh model (TimeSformer's)."""

import numpy as np
import paddle
import pytest

from paddlevideo.modeling import build_head, build_model
from paddlevideo.config import override_config


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _topk(scores, labels, k):
    top = np.argsort(-scores, axis=1)[:, :k]
    return np.mean([label in row for row, label in zip(top, labels)])


@pytest.mark.parametrize("num_classes", [3, 10])
@pytest.mark.parametrize("ls_eps", [0.0, 0.1])
def test_loss_and_topk_match_numpy(num_classes, ls_eps):
    head = build_head({"name": "TimeSformerHead", "num_classes": num_classes, "in_channels": 8, "ls_eps": ls_eps})
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((16, num_classes)).astype(np.float32)
    labels = rng.integers(0, num_classes, 16)
    out = head.loss(paddle.to_tensor(scores), paddle.to_tensor(labels[:, None]))
    target = np.eye(num_classes)[labels] * (1 - ls_eps) + ls_eps / num_classes
    np.testing.assert_allclose(float(out["loss"]), -(target * _log_softmax(scores.astype(np.float64))).sum(1).mean(),
                               rtol=1e-5)
    assert float(out["top1"]) == pytest.approx(_topk(scores, labels, 1))
    assert float(out["top5"]) == pytest.approx(_topk(scores, labels, min(5, num_classes)))
    # Valid mode reports the plain cross-entropy, whatever ls_eps is.
    valid = head.loss(paddle.to_tensor(scores), paddle.to_tensor(labels), valid_mode=True)
    plain = -_log_softmax(scores.astype(np.float64))[np.arange(16), labels].mean()
    np.testing.assert_allclose(float(valid["loss"]), plain, rtol=1e-5)


def test_fresh_model_init_follows_the_reference(tiny_cfg):
    override_config(tiny_cfg, ["MODEL.head.std=0.05", "MODEL.backbone.embed_dim=128", "MODEL.head.in_channels=128"])
    model = build_model(tiny_cfg.MODEL)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    for key, value in state.items():
        if "temporal_fc" in key or key == "backbone.time_embed":
            assert not value.any(), key
        elif "norm" in key:
            assert np.all(value == (1.0 if key.endswith("weight") else 0.0)), key
        elif key.endswith("bias") and "patch_embed" not in key:
            assert not value.any(), key
        elif key.endswith("weight") and "patch_embed" not in key:
            expected = 0.05 if key.startswith("head.") else 0.02
            assert value.std() == pytest.approx(expected, rel=0.1), key
            assert abs(value.mean()) < 0.1 * expected, key
    for key in ("backbone.pos_embed", "backbone.cls_token"):
        assert np.abs(state[key]).max() < 0.1 and state[key].std() > 0.01, key
    assert state["backbone.pos_embed"].std() == pytest.approx(0.02, rel=0.1)


def test_time_embed_std_draws_normal(tiny_cfg):
    override_config(tiny_cfg, ["MODEL.backbone.time_embed_std=1.0", "MODEL.backbone.num_seg=32",
                               "MODEL.backbone.embed_dim=128", "MODEL.head.in_channels=128"])
    time_embed = build_model(tiny_cfg.MODEL).backbone.time_embed.numpy()
    assert time_embed.std() == pytest.approx(1.0, rel=0.1) and abs(time_embed.mean()) < 0.1


def test_drop_path_rates_are_linspace(tiny_cfg):
    override_config(tiny_cfg, ["MODEL.backbone.depth=5"])
    rates = [block.drop_path.drop_prob for block in build_model(tiny_cfg.MODEL).backbone.blocks]
    np.testing.assert_allclose(rates, [0.0, 0.025, 0.05, 0.075, 0.1])  # default rate 0.1


def test_init_std_scales_linear_weights_only(tiny_cfg):
    override_config(tiny_cfg, ["MODEL.backbone.init_std=0.07", "MODEL.backbone.zero_init_temporal_fc=False",
                               "MODEL.backbone.embed_dim=128", "MODEL.head.in_channels=128"])
    state = {k: v.numpy() for k, v in build_model(tiny_cfg.MODEL).state_dict().items()}
    linear = [k for k in state if k.startswith("backbone.blocks.") and k.endswith("weight") and "norm" not in k]
    assert any("temporal_fc" in k for k in linear) and any("qkv" in k for k in linear)
    for key in linear:
        assert state[key].std() == pytest.approx(0.07, rel=0.1), key
    # pos_embed, cls_token and the head keep their own init (the reference's truncated normal / MODEL.head.std).
    assert state["backbone.pos_embed"].std() == pytest.approx(0.02, rel=0.1)
    assert state["head.fc.weight"].std() == pytest.approx(0.02, rel=0.1)


@pytest.mark.parametrize("value", [0, -0.1])
def test_init_std_must_be_positive(tiny_cfg, value):
    override_config(tiny_cfg, [f"MODEL.backbone.init_std={value}"])
    with pytest.raises(ValueError, match="init_std"):
        build_model(tiny_cfg.MODEL)
