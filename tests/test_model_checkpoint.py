"""Full-checkpoint loading: exact checks with one report, and time/grid resizing of the embeddings."""

import numpy as np
import paddle
import pytest

import numpy_timesformer as ref
from paddlevideo.modeling import CheckpointError, build_model, load_checkpoint
from paddlevideo.config import override_config


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


def _optimizer_state(model):
    """A real optimizer state after one step (PaddleVideo's .pdopt content: accumulators + LR_Scheduler)."""
    scheduler = paddle.optimizer.lr.CosineAnnealingDecay(0.1, T_max=10)
    optimizer = paddle.optimizer.Momentum(scheduler, momentum=0.9, parameters=model.parameters())
    model.train()
    imgs = paddle.randn([1, 3, 4, 32, 32])
    model([imgs, paddle.to_tensor([[1]])], mode="train")["loss"].backward()
    optimizer.step()
    return optimizer.state_dict()


def test_optimizer_state_is_refused_naming_the_weights_to_pass(tiny_cfg, tmp_path):
    from paddlevideo.tasks.run_files import save_epoch

    model = _tiny(tiny_cfg)
    state = _optimizer_state(model)
    assert "LR_Scheduler" in state and any(key.endswith("_velocity_0") for key in state)
    # This project's epoch files: <prefix>.pdparams + <prefix>.pdopt ({"optimizer": ..., "epoch": ...}).
    prefix = save_epoch(str(tmp_path), "M", 3, model.state_dict(), {"optimizer": state, "epoch": 3})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(_tiny(tiny_cfg), prefix + ".pdopt")
    message = str(err.value)
    assert message == (f"checkpoint '{prefix}.pdopt' is an optimizer state (training momentum and learning-rate "
                       f"schedule), not model weights; pass '{prefix}.pdparams' instead")
    load_checkpoint(_tiny(tiny_cfg), prefix + ".pdparams")  # the file it names loads

    # PaddleVideo's bare optimizer state, alone, and the same renamed to .pdparams (found by its content).
    paddle.save(state, str(tmp_path / "alone.pdopt"))
    with pytest.raises(CheckpointError, match=r"'.*alone\.pdopt' is an optimizer state .*model weights saved with "
                                              r"it \('.*alone\.pdparams'\)"):
        load_checkpoint(_tiny(tiny_cfg), str(tmp_path / "alone.pdopt"))
    paddle.save({k: v for k, v in state.items() if k != "LR_Scheduler"}, str(tmp_path / "renamed.pdparams"))
    with pytest.raises(CheckpointError, match="renamed.pdparams' is an optimizer state"):
        load_checkpoint(_tiny(tiny_cfg), str(tmp_path / "renamed.pdparams"))
    # Given as the image-ViT init, too.
    with pytest.raises(CheckpointError, match=f"'{prefix}.pdopt' is an optimizer state"):
        _tiny(tiny_cfg, [f"MODEL.backbone.pretrained={prefix}.pdopt"])
