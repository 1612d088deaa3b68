"""The library's TimeSformer equals the independent numpy reference (tests/numpy_timesformer.py)."""

import numpy as np
import paddle
import pytest

import numpy_timesformer as ref
from paddlevideo.modeling import build_model, load_checkpoint
from paddlevideo.config import override_config

TINY = dict(patch=8, num_heads=4, depth=2, eps=1e-6)


def _model_and_params(tiny_cfg, tmp_path, attention_type, seed=0, avg_type="score"):
    override_config(tiny_cfg, [f"MODEL.backbone.attention_type={attention_type}",
                               f"MODEL.runtime_cfg.test.avg_type={avg_type}"])
    shapes = ref.param_shapes(img_size=32, patch_size=8, in_channels=3, embed_dim=64, depth=2, num_seg=4,
                              num_classes=10, attention_type=attention_type)
    params = ref.random_params(shapes, seed=seed)
    path = str(tmp_path / "tiny.pdparams")
    paddle.save({k: paddle.to_tensor(v) for k, v in params.items()}, path)
    model = build_model(tiny_cfg.MODEL)
    load_checkpoint(model, path)
    model.eval()
    return model, params


@pytest.mark.parametrize("attention_type", ref.ATTENTION_TYPES)
def test_single_view_matches_numpy(tiny_cfg, tmp_path, attention_type):
    model, params = _model_and_params(tiny_cfg, tmp_path, attention_type)
    clip = np.random.default_rng(1).standard_normal((2, 3, 4, 32, 32)).astype(np.float32)
    with paddle.no_grad():
        feature = model.backbone(paddle.to_tensor(clip)).numpy()
        scores = model([paddle.to_tensor(clip)], "infer").numpy()
    expected = ref.timesformer_feature(params, clip, attention_type=attention_type, **TINY)
    np.testing.assert_allclose(feature, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(scores, ref.head_scores(params, expected), atol=1e-4, rtol=0)


@pytest.mark.parametrize("attention_type", ref.ATTENTION_TYPES)
@pytest.mark.parametrize("avg_type", ["score", "prob"])
def test_three_view_infer_matches_numpy(tiny_cfg, tmp_path, attention_type, avg_type):
    model, params = _model_and_params(tiny_cfg, tmp_path, attention_type, seed=2, avg_type=avg_type)
    # Views differ strongly so a wrong view split or order would show.
    clips = np.random.default_rng(3).standard_normal((2, 3, 12, 32, 32)).astype(np.float32)
    clips[:, :, 4:8] *= 3.0
    with paddle.no_grad():
        scores = model([paddle.to_tensor(clips)], "test").numpy()
        feature = model.extract_feature(paddle.to_tensor(clips)).numpy()
    expected = ref.infer_scores(params, clips, num_seg=4, avg_type=avg_type, attention_type=attention_type, **TINY)
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)
    views = [ref.timesformer_feature(params, clips[:, :, v * 4:(v + 1) * 4], attention_type=attention_type, **TINY)
             for v in range(3)]
    np.testing.assert_allclose(feature, np.mean(views, axis=0), atol=1e-4, rtol=0)


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time"])
@pytest.mark.parametrize("frames", [3, 6])
def test_other_clip_length_resizes_time_embed(tiny_cfg, tmp_path, attention_type, frames):
    model, params = _model_and_params(tiny_cfg, tmp_path, attention_type, seed=4)
    clip = np.random.default_rng(5).standard_normal((1, 3, frames, 32, 32)).astype(np.float32)
    with paddle.no_grad():
        feature = model.backbone(paddle.to_tensor(clip)).numpy()
    expected = ref.timesformer_feature(params, clip, attention_type=attention_type, **TINY)
    np.testing.assert_allclose(feature, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("attention_type", ref.ATTENTION_TYPES)
@pytest.mark.parametrize("kernels", ["auto", "paddle"])
def test_attention_read_out_matches_numpy(tiny_cfg, tmp_path, attention_type, kernels):
    tiny_cfg.MODEL.backbone.kernels = kernels
    model, params = _model_and_params(tiny_cfg, tmp_path, attention_type, seed=6)
    clip = np.random.default_rng(7).standard_normal((2, 3, 4, 32, 32)).astype(np.float32)
    with paddle.no_grad():
        plain_feature = model.backbone(paddle.to_tensor(clip)).numpy()
        feature, records = model.backbone.forward_with_attention(paddle.to_tensor(clip))
    expected_maps = []
    expected = ref.timesformer_feature(params, clip, attention_type=attention_type, maps=expected_maps, **TINY)
    np.testing.assert_allclose(feature.numpy(), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(feature.numpy(), plain_feature, atol=1e-5, rtol=0)
    # B=2 clips, N=16 patches, T=4 frames, 4 heads, depth 2: every block's maps, the last one's too.
    shapes = {"divided_space_time": {"temporal": (32, 4, 4, 4), "spatial": (8, 4, 17, 17)},
              "space_only": {"spatial": (8, 4, 17, 17)},
              "joint_space_time": {"joint": (2, 4, 65, 65)}}[attention_type]
    assert len(records) == len(expected_maps) == TINY["depth"]
    for index, (got, want) in enumerate(zip(records, expected_maps)):
        assert {name: tuple(value.shape) for name, value in got.items()} == shapes, index
        assert want.keys() == got.keys()
        for name, value in got.items():
            np.testing.assert_allclose(value.numpy(), want[name], atol=1e-5, rtol=0, err_msg=f"block {index} {name}")
            np.testing.assert_allclose(value.numpy().sum(-1), 1.0, atol=1e-5, rtol=0)
            assert np.abs(want[name] - want[name].mean(-1, keepdims=True)).max() > 1e-3  # not uniform: a real test
