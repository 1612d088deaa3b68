"""Full-checkpoint loading: exact checks with one report, and time/grid resizing of the embeddings."""

import numpy as np
import paddle
import pytest

import numpy_timesformer as ref
from paddlevideo.modeling import CheckpointError, build_model, load_checkpoint
from paddlevideo.utils import override_config


def _tiny(tiny_cfg, overrides=()):
    override_config(tiny_cfg, list(overrides))
    return build_model(tiny_cfg.MODEL)


def test_roundtrip_through_file(tiny_cfg, tmp_path):
    source = _tiny(tiny_cfg, ["MODEL.backbone.time_embed_std=1.0"])
    path = str(tmp_path / "model.pdparams")
    paddle.save(source.state_dict(), path)
    target = _tiny(tiny_cfg)
    load_checkpoint(target, path)
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key].numpy(), value.numpy(), err_msg=key)


def test_report_names_missing_unexpected_and_mismatched(tiny_cfg):
    model = _tiny(tiny_cfg)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    state["head.fc.weight"] = np.zeros((64, 5), np.float32)
    del state["backbone.norm.bias"]
    state["backbone.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(model, state)
    message = str(err.value)
    assert "head.fc.weight" in message and "[64, 5]" in message and "[64, 10]" in message
    assert "missing keys: backbone.norm.bias" in message
    assert "unexpected keys: backbone.extra.weight" in message
    assert "\n" not in message


def test_wrong_shape_file_names_the_key_and_both_shapes(tiny_cfg, tmp_path):
    state = _tiny(tiny_cfg).state_dict()
    state["backbone.blocks.1.mlp.fc1.weight"] = paddle.zeros([64, 128])
    path = str(tmp_path / "bad.pdparams")
    paddle.save(state, path)
    with pytest.raises(CheckpointError, match=r"bad\.pdparams.*blocks\.1\.mlp\.fc1\.weight: checkpoint \[64, 128\] "
                                              r"vs model \[64, 256\]"):
        load_checkpoint(_tiny(tiny_cfg), path)


def test_missing_checkpoint_file_names_the_path(tiny_cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pdparams"):
        load_checkpoint(_tiny(tiny_cfg), str(tmp_path / "nowhere.pdparams"))


def test_time_and_grid_are_resized(tiny_cfg, tmp_path, caplog):
    source = _tiny(tiny_cfg, ["MODEL.backbone.time_embed_std=1.0"])
    state = {k: v.numpy() for k, v in source.state_dict().items()}
    target = _tiny(tiny_cfg, ["MODEL.backbone.num_seg=8", "MODEL.backbone.img_size=48"])
    with caplog.at_level("INFO", logger="paddlevideo"):
        load_checkpoint(target, state)
    assert "backbone.time_embed" in caplog.text and "backbone.pos_embed" in caplog.text
    got = {k: v.numpy() for k, v in target.state_dict().items()}

    np.testing.assert_array_equal(got["backbone.time_embed"][0], state["backbone.time_embed"][0][[0, 0, 1, 1, 2, 2, 3, 3]])
    pos = state["backbone.pos_embed"][0].astype(np.float64)
    grid = ref.bilinear_align_corners(pos[1:].reshape(4, 4, -1), 6, 6).reshape(36, -1)
    np.testing.assert_allclose(got["backbone.pos_embed"][0], np.concatenate([pos[:1], grid]), atol=1e-6, rtol=0)
    for key, value in state.items():
        if not key.endswith(("time_embed", "pos_embed")):
            np.testing.assert_array_equal(got[key], value, err_msg=key)
