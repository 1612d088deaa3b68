"""The attention read-out of a real (tiny) model: shapes, and probabilities that reproduce what each
attention layer computed (``proj(P @ v)`` equals the layer's output), for divided, joint and space-only."""

import numpy as np
import pytest

from paddlevideo.visualization.attention import collect_attention, explain_clip
from paddlevideo.visualization.views import display_frames, select_view

TYPES = ("divided_space_time", "joint_space_time", "space_only")
FRAMES, GRID = 4, 4  # the tiny config: 4 frames, 32 px, patch 8
PATCHES = GRID * GRID


def tiny_model(tiny_cfg, attention_type, seed=0):
    import paddle

    from paddlevideo.modeling.builder import build_model

    paddle.seed(seed)
    tiny_cfg.MODEL.backbone.attention_type = attention_type
    tiny_cfg.MODEL.backbone.zero_init_temporal_fc = False  # let the temporal branch act in a fresh model
    model = build_model(tiny_cfg.MODEL)
    model.eval()
    return model


def clip(batch=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, 3, FRAMES, 32, 32)).astype("float32")


class LayerCalls:
    """Records each Attention layer's input and output with the test's own forward-post hooks."""

    def __init__(self, layers):
        self.calls = {}
        self.handles = [layer.register_forward_post_hook(self._hook(name)) for name, layer in layers]

    def _hook(self, name):
        def record(layer, inputs, output):
            self.calls[name] = (inputs[0].numpy(), output.numpy())
        return record

    def remove(self):
        for handle in self.handles:
            handle.remove()


def attention_layers(model):
    layers = []
    for index, block in enumerate(model.backbone.blocks):
        if hasattr(block, "temporal_attn"):
            layers.append((f"{index}.temporal", block.temporal_attn))
        layers.append((f"{index}.attn", block.attn))
    return layers


def replay(layer, x, probs):
    """``proj(P @ v)`` in numpy float64 from the layer's weights: what the layer outputs given ``P``."""
    weight, bias = layer.qkv.weight.numpy().astype(np.float64), layer.qkv.bias
    dim = weight.shape[0]
    qkv = x.astype(np.float64) @ weight + (0.0 if bias is None else bias.numpy())
    v = qkv[..., 2 * dim:].reshape(x.shape[0], x.shape[1], layer.num_heads, -1).transpose(0, 2, 1, 3)
    out = (probs.astype(np.float64) @ v).transpose(0, 2, 1, 3).reshape(x.shape[0], -1, dim)
    return out @ layer.proj.weight.numpy() + layer.proj.bias.numpy()


@pytest.mark.parametrize("attention_type", TYPES)
def test_probabilities_reproduce_every_attention_layer(tiny_cfg, attention_type):
    import paddle

    model = tiny_model(tiny_cfg, attention_type)
    x = clip()
    with paddle.no_grad():
        reference = model(paddle.to_tensor(x), mode="infer").numpy()
        # What each attention layer computes on the normal path, every block in full (the last one too).
        cls_only, model.backbone.cls_only_last_block = model.backbone.cls_only_last_block, False
        recorder = LayerCalls(attention_layers(model))
        try:
            model(paddle.to_tensor(x), mode="infer")
        finally:
            recorder.remove()
            model.backbone.cls_only_last_block = cls_only
    scores, blocks = collect_attention(model, x)
    np.testing.assert_allclose(scores, reference, rtol=1e-5, atol=1e-6)  # the read-out changes nothing
    assert len(blocks) == len(model.backbone.blocks)
    expected = {"divided_space_time": {"temporal": (2 * PATCHES, 4, FRAMES, FRAMES),
                                       "spatial": (2 * FRAMES, 4, 1 + PATCHES, 1 + PATCHES)},
                "joint_space_time": {"joint": (2, 4, 1 + PATCHES * FRAMES, 1 + PATCHES * FRAMES)},
                "space_only": {"spatial": (2 * FRAMES, 4, 1 + PATCHES, 1 + PATCHES)}}[attention_type]
    for index, block in enumerate(blocks):
        assert {k: v.shape for k, v in block.items()} == expected
        for key, probs in block.items():
            np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
            name = f"{index}.temporal" if key == "temporal" else f"{index}.attn"
            layer = dict(attention_layers(model))[name]
            x_in, out = recorder.calls[name]
            replayed = replay(layer, x_in, probs)
            np.testing.assert_allclose(replayed, out, rtol=1e-4, atol=2e-5)


def test_read_out_leaves_no_hooks_and_keeps_the_mode(tiny_cfg):
    model = tiny_model(tiny_cfg, "divided_space_time")
    model.train()
    collect_attention(model, clip(1))
    assert model.training
    for _, layer in attention_layers(model):
        assert not layer._forward_post_hooks
    # the backbone alone works as well: its output is the CLS feature
    features, blocks = collect_attention(model.backbone, clip(1))
    assert features.shape == (1, 64) and len(blocks) == 2


@pytest.mark.parametrize("attention_type", TYPES)
def test_explain_clip_maps(tiny_cfg, attention_type):
    model = tiny_model(tiny_cfg, attention_type)
    scores, rollout = explain_clip(model, clip(), "max")
    assert scores.shape == (2, 10)
    assert rollout.maps.shape == (2, FRAMES, GRID, GRID) and rollout.temporal_share.shape == (2, FRAMES)
    np.testing.assert_allclose(rollout.maps.sum(axis=(1, 2, 3)), 1.0, atol=1e-9)
    assert np.all(rollout.maps > 0)
    if attention_type == "space_only":
        np.testing.assert_allclose(rollout.temporal_share, 1.0 / FRAMES, atol=1e-12)


def test_select_view_and_display_frames(tiny_cfg):
    """The three UniformCrop views come back in the right place, and the frames are the decoded pixels."""
    from paddlevideo.loader.builder import build_pipeline

    pipeline = build_pipeline(tiny_cfg.PIPELINE.test)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(FRAMES, 32, 48, 3)).astype(np.uint8)  # landscape: views along x
    ops = pipeline.operators[2:]  # the transforms (decode and sample need a file)
    results = {"imgs": pixels, "frame_idx": np.arange(FRAMES)}
    for op in ops:
        results = op(results)
    for view, x0 in (("left", 0), ("centre", 8), ("right", 16)):
        model_clip, indices = select_view(results, FRAMES, view)
        assert model_clip.shape == (1, 3, FRAMES, 32, 32) and list(indices) == list(range(FRAMES))
        frames = display_frames(model_clip, pipeline)
        assert np.abs(frames.astype(int) - pixels[:, :, x0:x0 + 32].astype(int)).max() <= 1
    from paddlevideo.visualization.files import VisualizationError

    with pytest.raises(VisualizationError, match="unknown view"):
        select_view(results, FRAMES, "top")
    single = dict(results, imgs=results["imgs"][:, :FRAMES])
    with pytest.raises(VisualizationError, match="single view"):
        select_view(single, FRAMES, "left")
    with pytest.raises(VisualizationError, match="num_seg"):
        select_view(results, 3, "centre")
