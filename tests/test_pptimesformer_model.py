"""PP-TimeSformer's backbone and head (VisionTransformer_tweaks, ppTimeSformerHead): PaddleVideo's checkpoint
layout, strict loading, the same logits as TimeSformer's layers (against the numpy reference), the no-decay marks,
and what wd_bias / lr_mult_list do."""

import logging

import numpy as np
import paddle
import pytest

import numpy_timesformer as ref
from conftest import REPO
from paddlevideo.modeling import CheckpointError, build_model, load_checkpoint
from paddlevideo.modeling.weight_decay import no_weight_decay_names
from paddlevideo.config import ConfigError, get_config

PP_CONFIG = REPO / "configs" / "recognition" / "pptimesformer" / "pptimesformer_k400_videos.yaml"
TINY = dict(img_size=32, patch_size=8, in_channels=3, embed_dim=64, depth=2, num_heads=4, num_seg=4, epsilon=1e-6,
            qkv_bias=False)
NO_DECAY = ["backbone.cls_token", "backbone.pos_embed", "backbone.time_embed", "head.fc.bias"]


def _model(backbone="VisionTransformer_tweaks", head="ppTimeSformerHead", avg_type="prob", **extra):
    return build_model({"framework": "RecognizerTransformer",
                        "backbone": {"name": backbone, "pretrained": "", **TINY, **extra},
                        "head": {"name": head, "num_classes": 5, "in_channels": 64, "ls_eps": 0.1},
                        "runtime_cfg": {"test": {"num_seg": 4, "avg_type": avg_type}}})


def test_checkpoint_surface_is_paddlevideos_and_loads_strictly(shared_dir):
    """The config's ViT-B model has exactly PaddleVideo's PP-TimeSformer keys, shapes and dtypes: TimeSformer's
    249 of the spec without the q/k/v biases (qkv_bias: False); a state dict built from those lines loads strictly,
    and one with the q/k/v biases (a TimeSformer checkpoint) is refused naming them."""
    lines = [line.split() for line in (shared_dir / "spec" / "timesformer_base_keys.txt").read_text().splitlines()
             if line.strip()]
    expected = [line for line in lines if not line[0].endswith(".qkv.bias")]
    assert len(expected) == 249 - 24
    model = build_model(get_config(str(PP_CONFIG), ["MODEL.backbone.pretrained="], show=False).MODEL)
    got = [[key, "[" + ",".join(str(s) for s in value.shape) + "]", str(value.dtype).replace("paddle.", "")]
           for key, value in model.state_dict().items()]
    assert got == expected

    def array(shape, value):
        return np.full([int(s) for s in shape.strip("[]").split(",")], value, np.float32)

    state = {key: array(shape, 0.5) for key, shape, _ in expected}
    load_checkpoint(model, state)
    assert float(model.backbone.blocks[11].attn.qkv.weight[0, 0]) == 0.5 and float(model.head.fc.bias[3]) == 0.5
    state.update({key: array(shape, 0.0) for key, shape, _ in lines if key.endswith(".qkv.bias")})
    with pytest.raises(CheckpointError, match=r"unexpected keys: backbone\.blocks\.0\.attn\.qkv\.bias"):
        load_checkpoint(model, state)


def test_no_weight_decay_marks():
    assert no_weight_decay_names(_model()) == NO_DECAY
    assert no_weight_decay_names(_model("VisionTransformer", "TimeSformerHead")) == []
    # space_only has no time embedding: the other two embeddings are still marked
    assert no_weight_decay_names(_model(attention_type="space_only"))[:2] == NO_DECAY[:2]


@pytest.mark.parametrize("avg_type", ["prob", "score"])
def test_logits_equal_the_numpy_reference(avg_type):
    """Same weights, same clip: the PP model's 3-view test scores equal the independent float64 reference (and so
    TimeSformer's layers: the subclasses add no computation)."""
    shapes = ref.param_shapes(32, 8, 3, 64, 2, 4, 5, "divided_space_time")
    params = ref.random_params(shapes, seed=3)
    no_qkv_bias = {k: v for k, v in params.items() if not k.endswith(".qkv.bias")}
    for key in params:
        if key.endswith(".qkv.bias"):
            params[key] = np.zeros_like(params[key])  # the reference adds a bias; qkv_bias False has none
    model = _model(avg_type=avg_type)
    load_checkpoint(model, no_qkv_bias)
    model.eval()
    clips = np.random.default_rng(0).standard_normal((2, 3, 12, 32, 32)).astype(np.float32)
    with paddle.no_grad():
        got = model([paddle.to_tensor(clips)], mode="test").numpy()
    want = ref.infer_scores(params, clips.astype(np.float64), 4, avg_type, patch=8, num_heads=4, depth=2, eps=1e-6,
                            attention_type="divided_space_time")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5)
    if avg_type == "prob":  # avg_type prob: the mean of the 3 crops' softmax, a probability vector
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)


def test_wd_bias_and_lr_mult_list_are_accepted_and_say_when_not_applied(caplog):
    caplog.set_level(logging.WARNING, logger="paddlevideo")
    logger = logging.getLogger("paddlevideo")
    logger.addHandler(caplog.handler)
    try:
        _model(wd_bias=True, lr_mult_list=[1.0, 1.0, 1.0, 1.0, 1.0])
        assert not caplog.records
        _model(wd_bias=False, lr_mult_list=[0.1, 1.0, 1.0, 1.0, 1.0])
    finally:
        logger.removeHandler(caplog.handler)
    text = list(dict.fromkeys(r.getMessage() for r in caplog.records))  # once even if root also caught it
    assert len(text) == 2 and "wd_bias False is not applied" in text[0] and "lr_mult_list" in text[1]
    assert "[0.1, 1.0, 1.0, 1.0, 1.0] is not applied" in text[1]
    with pytest.raises(ConfigError, match="lr_mult_list"):
        _model(lr_mult_list=[1.0, 0.0, 1.0, 1.0, 1.0])


def test_config_keys_of_the_pp_classes(tmp_path):
    """The PP classes take every key of TimeSformer's (their defaults included: drop_path_rate stays 0.1) plus
    wd_bias / lr_mult_list, which the schema checks."""
    from paddlevideo.config import schema

    keys = schema.component_keys("backbone", "VisionTransformer_tweaks")
    assert set(keys) == set(schema.component_keys("backbone", "VisionTransformer")) | {"wd_bias", "lr_mult_list"}
    assert keys["drop_path_rate"].default == 0.1 and keys["wd_bias"].default is True
    assert set(schema.component_keys("head", "ppTimeSformerHead")) == set(schema.component_keys("head", "TimeSformerHead"))
    with pytest.raises(ConfigError, match=r"MODEL\.backbone\.lr_mult_list .*item 1 must be > 0"):
        get_config(str(PP_CONFIG), ["MODEL.backbone.lr_mult_list=[1, -1, 1, 1, 1]"], show=False)
    with pytest.raises(ConfigError, match=r"MODEL\.backbone\.wd_bias must be true or false"):
        get_config(str(PP_CONFIG), ["MODEL.backbone.wd_bias=maybe"], show=False)
