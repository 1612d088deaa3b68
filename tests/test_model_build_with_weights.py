"""Test, export and feature extraction build the model from a full checkpoint: the image-ViT
``pretrained`` file of a training config is not needed there (PaddleVideo clears it too)."""

import numpy as np
import paddle

from paddlevideo.modeling.builder import build_model, build_model_with_weights


def test_full_checkpoint_replaces_pretrained_init(tiny_cfg, tmp_path):
    paddle.seed(3)
    trained = build_model(tiny_cfg.MODEL)
    weights = tmp_path / "trained.pdparams"
    paddle.save(trained.state_dict(), str(weights))

    tiny_cfg.MODEL.backbone.pretrained = str(tmp_path / "ViT_base_patch16_224_pretrained.pdparams")  # absent
    model = build_model_with_weights(tiny_cfg.MODEL, str(weights), attention_impl="plain")

    assert not model.training
    assert model.backbone.blocks[0].attn.impl == "plain"
    assert tiny_cfg.MODEL.backbone.pretrained.endswith("pretrained.pdparams"), "the caller's config is unchanged"
    expected = trained.state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), expected[key].numpy(), err_msg=key)
