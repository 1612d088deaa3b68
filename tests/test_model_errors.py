"""Bad model configs give one clear error naming the culprit."""

import pytest

from paddlevideo.modeling import build_loss, build_model
from paddlevideo.config import override_config


@pytest.mark.parametrize("key, known", [
    ("MODEL.backbone.name", "VisionTransformer"),
    ("MODEL.head.name", "TimeSformerHead"),
    ("MODEL.framework", "RecognizerTransformer"),
])
def test_unknown_name_lists_known_ones(tiny_cfg, key, known):
    override_config(tiny_cfg, [f"{key}=NoSuchThing"])
    with pytest.raises(KeyError, match=f"NoSuchThing.*{known}"):
        build_model(tiny_cfg.MODEL)


def test_unknown_loss_lists_known_ones():
    with pytest.raises(KeyError, match="FocalLoss.*CrossEntropyLoss"):
        build_loss({"name": "FocalLoss"})


def test_unknown_backbone_key_is_named(tiny_cfg):
    override_config(tiny_cfg, ["MODEL.backbone.num_segs=4"])
    with pytest.raises(TypeError, match="num_segs"):
        build_model(tiny_cfg.MODEL)


@pytest.mark.parametrize("key, value", [
    ("MODEL.backbone.attention_type", "divided"),
    ("MODEL.backbone.attention_impl", "flash"),
    ("MODEL.runtime_cfg.test.avg_type", "vote"),
])
def test_bad_choice_names_value_and_choices(tiny_cfg, key, value):
    override_config(tiny_cfg, [f"{key}={value}"])
    with pytest.raises(ValueError, match=value):
        build_model(tiny_cfg.MODEL)


def test_missing_pretrained_file_names_the_path(tiny_cfg, tmp_path):
    path = tmp_path / "no_vit.pdparams"
    override_config(tiny_cfg, [f"MODEL.backbone.pretrained={path}"])
    with pytest.raises(FileNotFoundError, match="no_vit.pdparams"):
        build_model(tiny_cfg.MODEL)


def test_wrong_input_size_and_view_count(tiny_cfg):
    import paddle

    model = build_model(tiny_cfg.MODEL)
    model.eval()
    with pytest.raises(ValueError, match="img_size"):
        model([paddle.zeros([1, 3, 4, 48, 48])], "infer")
    with pytest.raises(ValueError, match="num_seg"):
        model([paddle.zeros([1, 3, 6, 32, 32])], "test")
    with pytest.raises(ValueError, match="mode 'predict'"):
        model([paddle.zeros([1, 3, 4, 32, 32])], "predict")
