"""Image-ViT conversion: pos grid resize, attn -> temporal_attn copies, image-model start."""

import logging

import numpy as np
import paddle
import pytest

import numpy_timesformer as ref
from paddlevideo.modeling import build_model
from paddlevideo.config import override_config
from paddlevideo.common import save_load

EPS = 1e-6


def _image_vit(tmp_path, img_size=24, with_temporal=False):
    """A fake PaddleClas image ViT (grid 3x3 at 24 px) with a 7-class head, saved as .pdparams."""
    params = ref.random_params(ref.param_shapes(img_size, 8, 3, 64, 2, 0, 0, "space_only", prefix=""), seed=11)
    params.pop("time_embed", None)
    rng = np.random.default_rng(12)
    params["head.weight"] = rng.standard_normal((64, 7)).astype(np.float32)
    params["head.bias"] = rng.standard_normal(7).astype(np.float32)
    if with_temporal:
        params["blocks.0.temporal_attn.proj.bias"] = rng.standard_normal(64).astype(np.float32)
    path = tmp_path / "vit_image.pdparams"
    paddle.save({k: paddle.to_tensor(v) for k, v in params.items()}, str(path))
    return params, path


def _converted(tiny_cfg, path, attention_type):
    override_config(tiny_cfg, [f"MODEL.backbone.pretrained={path}",
                               f"MODEL.backbone.attention_type={attention_type}"])
    model = build_model(tiny_cfg.MODEL)
    model.eval()
    return model


def _resized_pos(params, new_side=4):
    pos = params["pos_embed"][0].astype(np.float64)
    grid = pos[1:].reshape(3, 3, -1)
    resized = ref.bilinear_align_corners(grid, new_side, new_side).reshape(new_side * new_side, -1)
    return np.concatenate([pos[:1], resized])[None]


def test_divided_conversion_copies_attention_to_time(tiny_cfg, tmp_path, caplog):
    params, path = _image_vit(tmp_path)
    with caplog.at_level(logging.INFO, logger="paddlevideo"):
        model = _converted(tiny_cfg, path, "divided_space_time")
    state = {k: v.numpy() for k, v in model.backbone.state_dict().items()}

    np.testing.assert_allclose(state["pos_embed"], _resized_pos(params), atol=1e-6, rtol=0)
    for i in range(2):
        for part in ("qkv.weight", "qkv.bias", "proj.weight", "proj.bias"):
            np.testing.assert_array_equal(state[f"blocks.{i}.temporal_attn.{part}"], params[f"blocks.{i}.attn.{part}"])
        for part in ("weight", "bias"):
            np.testing.assert_array_equal(state[f"blocks.{i}.temporal_norm1.{part}"], params[f"blocks.{i}.norm1.{part}"])
            assert not state[f"blocks.{i}.temporal_fc.{part}"].any()
    assert not state["time_embed"].any()
    for key, value in params.items():
        if key != "pos_embed" and not key.startswith("head."):
            np.testing.assert_array_equal(state[key], value, err_msg=key)
    # The image head is dropped: the recognizer's head keeps its own random init and shape.
    assert model.head.fc.weight.shape == [64, 10]
    assert "time_embed" in caplog.text and "temporal_fc" in caplog.text  # reported as not in the file


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only"])
def test_identical_frames_give_image_vit_feature(tiny_cfg, tmp_path, attention_type):
    params, path = _image_vit(tmp_path)
    model = _converted(tiny_cfg, path, attention_type)
    frame = np.random.default_rng(13).standard_normal((2, 3, 32, 32)).astype(np.float32)
    clip = np.repeat(frame[:, :, None], 4, axis=2)
    with paddle.no_grad():
        feature = model.backbone(paddle.to_tensor(clip)).numpy()
    image_params = dict(params, pos_embed=_resized_pos(params))
    expected = ref.image_vit_cls(image_params, frame, patch=8, num_heads=4, depth=2, eps=EPS)
    np.testing.assert_allclose(feature, expected, atol=1e-4, rtol=0)


def test_joint_loads_image_weights_as_they_are(tiny_cfg, tmp_path):
    params, path = _image_vit(tmp_path)
    model = _converted(tiny_cfg, path, "joint_space_time")
    state = model.backbone.state_dict()
    np.testing.assert_array_equal(state["blocks.1.attn.qkv.weight"].numpy(), params["blocks.1.attn.qkv.weight"])
    assert not any("temporal" in key for key in state)


def test_checkpoint_temporal_weights_are_not_overwritten(tiny_cfg, tmp_path):
    params, path = _image_vit(tmp_path, with_temporal=True)
    saved = save_load.load(str(path))["blocks.0.temporal_attn.proj.bias"].numpy()
    model = _converted(tiny_cfg, path, "divided_space_time")
    got = model.backbone.blocks[0].temporal_attn.proj.bias.numpy()
    np.testing.assert_array_equal(got, saved)
    assert not np.array_equal(got, params["blocks.0.attn.proj.bias"])


def test_full_recognizer_checkpoint_as_pretrained_uses_its_backbone(tiny_cfg, tmp_path):
    source = build_model(tiny_cfg.MODEL)
    for key, value in source.backbone.state_dict().items():
        value.set_value(paddle.randn(value.shape))
    path = tmp_path / "full.pdparams"
    paddle.save(source.state_dict(), str(path))
    model = _converted(tiny_cfg, path, "divided_space_time")
    for key, value in source.backbone.state_dict().items():
        np.testing.assert_array_equal(model.backbone.state_dict()[key].numpy(), value.numpy(), err_msg=key)
