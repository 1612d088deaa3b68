"""Checkpoint conversion from the PyTorch releases (issue 6): transformers parity, original-release
key mapping, embedding resize on load, and clear errors. Needs torch and transformers (requirements-test.txt)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
import torch
from transformers import TimesformerConfig, TimesformerForVideoClassification

from helpers import load_tool

from paddlevideo.modeling import build_model, load_checkpoint
from paddlevideo.modeling.convert import (
    ConversionError,
    compare_settings,
    from_paddle,
    read_hf_folder,
    read_source,
    settings_as_overrides,
    settings_from_hf_config,
    to_paddle,
)
from paddlevideo.config import get_config, save_config
from paddlevideo.common import save_load

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "convert_checkpoint.py"
DIM, DEPTH, HEADS, FRAMES, IMG, PATCH, CLASSES = 64, 2, 4, 4, 32, 8, 10


def _hf_model(seed=0):
    """A tiny random transformers TimeSformer whose every weight matters for the output."""
    torch.manual_seed(seed)
    config = TimesformerConfig(image_size=IMG, patch_size=PATCH, num_frames=FRAMES, hidden_size=DIM,
                               num_hidden_layers=DEPTH, num_attention_heads=HEADS, intermediate_size=4 * DIM,
                               num_labels=CLASSES)
    model = TimesformerForVideoClassification(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            # HF starts time embeddings at 0; random values make a wrong time layout visible.
            if "time_embeddings" in name or "position_embeddings" in name or "cls_token" in name:
                param.normal_(0.0, 0.5)
            elif name.endswith("weight") and param.ndim == 2:
                param.normal_(0.0, 0.1)
            elif name.endswith("bias") or "layernorm" in name:
                param.add_(torch.randn_like(param) * 0.1)
    return model


def test_hf_checkpoint_converts_with_same_logits(tmp_path):
    hf = _hf_model()
    folder = tmp_path / "hf"
    hf.save_pretrained(folder)
    assert (folder / "model.safetensors").is_file()
    video = np.random.RandomState(1).randn(2, FRAMES, 3, IMG, IMG).astype("float32")  # HF layout [B,T,C,H,W]
    with torch.no_grad():
        expected = hf(pixel_values=torch.from_numpy(video)).logits.numpy()

    out = tmp_path / "hf.pdparams"
    assert load_tool("tools/convert_checkpoint.py").main(["--from", "hf", str(folder), "-o", str(out)]) == 0

    _, _, settings = read_source(str(folder), "hf")
    cfg = get_config(str(REPO / "configs/recognition/timesformer/timesformer_k400_videos.yaml"),
                     settings_as_overrides(settings) + ["MODEL.backbone.pretrained="], show=False)
    assert cfg.MODEL.backbone.num_heads == HEADS and cfg.MODEL.head.num_classes == CLASSES
    model = build_model(cfg.MODEL)
    load_checkpoint(model, str(out))
    model.eval()
    with paddle.no_grad():
        got = model(paddle.to_tensor(video.transpose(0, 2, 1, 3, 4)), mode="infer").numpy()
    assert np.abs(expected).max() > 0.5  # the comparison is not between near-zero logits
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_hf_pytorch_bin_folder_reads_like_safetensors(tmp_path):
    hf = _hf_model(seed=3)
    hf.save_pretrained(tmp_path / "st")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "config.json").write_text((tmp_path / "st" / "config.json").read_text())
    torch.save(hf.state_dict(), bin_dir / "pytorch_model.bin")
    from_st, _ = read_hf_folder(str(tmp_path / "st"))
    from_bin, _ = read_hf_folder(str(bin_dir))
    assert sorted(from_st) == sorted(from_bin)
    for key in from_st:
        np.testing.assert_array_equal(from_st[key], from_bin[key])


def test_safetensors_are_read_without_torch(tmp_path):
    hf = _hf_model()
    hf.save_pretrained(tmp_path / "hf")
    code = ("import sys; from paddlevideo.modeling.convert import read_source; "
            f"s, r, _ = read_source({str(tmp_path / 'hf')!r}, 'hf'); "
            "assert 'torch' not in sys.modules, 'torch was imported'; print(len(s))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == str(len(hf.state_dict()))


# Names of the original release (lib/models/vit.py), written out here independently of the mapping.
def _fb_state(rng, depth=DEPTH, dim=DIM, frames=FRAMES, img=IMG, patch=PATCH, classes=CLASSES):
    grid = (img // patch) ** 2
    state = {
        "model.cls_token": rng.randn(1, 1, dim),
        "model.pos_embed": rng.randn(1, grid + 1, dim),
        "model.time_embed": rng.randn(1, frames, dim),
        "model.patch_embed.proj.weight": rng.randn(dim, 3, patch, patch),
        "model.patch_embed.proj.bias": rng.randn(dim),
        "model.norm.weight": rng.randn(dim),
        "model.norm.bias": rng.randn(dim),
        "model.head.weight": rng.randn(classes, dim),  # torch Linear: [out, in]
        "model.head.bias": rng.randn(classes),
    }
    linear = {"attn.qkv": (3 * dim, dim), "attn.proj": (dim, dim), "temporal_attn.qkv": (3 * dim, dim),
              "temporal_attn.proj": (dim, dim), "temporal_fc": (dim, dim), "mlp.fc1": (4 * dim, dim),
              "mlp.fc2": (dim, 4 * dim)}
    for i in range(depth):
        for norm in ("norm1", "temporal_norm1", "norm2"):
            state[f"model.blocks.{i}.{norm}.weight"] = rng.randn(dim)
            state[f"model.blocks.{i}.{norm}.bias"] = rng.randn(dim)
        for name, shape in linear.items():
            state[f"model.blocks.{i}.{name}.weight"] = rng.randn(*shape)
            state[f"model.blocks.{i}.{name}.bias"] = rng.randn(shape[0])
    return {k: v.astype("float32") for k, v in state.items()}


def _save_pyth(state, path):
    torch.save({"epoch": 15, "model_state": {k: torch.from_numpy(v) for k, v in state.items()},
                "optimizer_state": {}, "cfg": "MODEL:\n  NUM_CLASSES: 10\n"}, path)


def test_fb_pyth_converts_and_values_land_where_mapped(tmp_path, tiny_cfg):
    src = _fb_state(np.random.RandomState(0))
    _save_pyth(src, tmp_path / "tiny.pyth")
    out = tmp_path / "tiny.pdparams"
    # The tiny model has 16-wide heads, not the release's 64: the source model's head count is stated.
    result = subprocess.run([sys.executable, str(TOOL), "--from", "fb", str(tmp_path / "tiny.pyth"), "-o", str(out),
                             "-c", save_config(tiny_cfg, tmp_path / "tiny.yaml"), "--source-num-heads", str(HEADS)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "logits match the source model's" in result.stdout and "verified against the model of" in result.stdout
    # Every source key is reported once, the transposed ones marked.
    for key in src:
        assert f"INFO: {key} [" in result.stdout
    assert result.stdout.count("(transposed)") == DEPTH * 7 + 1

    converted = save_load.load(str(out))
    model = build_model(tiny_cfg.MODEL)
    assert sorted(converted) == sorted(model.state_dict())  # no missing, no unexpected keys
    load_checkpoint(model, converted)
    own = {k: v.numpy() for k, v in model.state_dict().items()}
    np.testing.assert_array_equal(own["backbone.blocks.1.attn.qkv.weight"], src["model.blocks.1.attn.qkv.weight"].T)
    np.testing.assert_array_equal(own["backbone.blocks.0.mlp.fc1.weight"], src["model.blocks.0.mlp.fc1.weight"].T)
    np.testing.assert_array_equal(own["backbone.blocks.0.temporal_fc.weight"],
                                  src["model.blocks.0.temporal_fc.weight"].T)
    np.testing.assert_array_equal(own["head.fc.weight"], src["model.head.weight"].T)
    np.testing.assert_array_equal(own["head.fc.bias"], src["model.head.bias"])
    np.testing.assert_array_equal(own["backbone.blocks.1.temporal_norm1.weight"],
                                  src["model.blocks.1.temporal_norm1.weight"])
    np.testing.assert_array_equal(own["backbone.patch_embed.proj.weight"], src["model.patch_embed.proj.weight"])
    np.testing.assert_array_equal(own["backbone.time_embed"], src["model.time_embed"])


def test_fb_unmapped_key_is_a_clear_error(tmp_path):
    src = _fb_state(np.random.RandomState(0))
    src["model.blocks.0.attn.rel_pos.weight"] = np.zeros(3, "float32")
    with pytest.raises(ConversionError, match=r"model\.blocks\.0\.attn\.rel_pos\.weight"):
        to_paddle(src, "fb")
    _save_pyth(src, tmp_path / "bad.pyth")
    result = subprocess.run([sys.executable, str(TOOL), "--from", "fb", str(tmp_path / "bad.pyth"),
                             "-o", str(tmp_path / "bad.pdparams")], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [result.stderr.strip()] and "Traceback" not in result.stderr
    assert result.stderr.startswith("convert_checkpoint.py: error: ") and "rel_pos" in result.stderr
    assert not (tmp_path / "bad.pdparams").exists()


@pytest.mark.parametrize("fmt", ["fb", "hf"])
def test_mapping_round_trips(fmt):
    src = _fb_state(np.random.RandomState(2))
    if fmt == "hf":
        src = from_paddle(to_paddle(src, "fb")[0], "hf")
        assert "timesformer.encoder.layer.1.temporal_dense.weight" in src and "classifier.bias" in src
    ours, report = to_paddle(src, fmt)
    assert len(report) == len(src) == len(ours)
    back = from_paddle(ours, fmt)
    assert sorted(back) == sorted(src)
    for key in src:
        np.testing.assert_array_equal(back[key], src[key])


def test_ddp_and_bare_fb_prefixes_are_accepted():
    src = _fb_state(np.random.RandomState(4))
    wrapped = {"module." + k: v for k, v in src.items()}
    bare = {k[len("model."):]: v for k, v in src.items()}
    reference, _ = to_paddle(src, "fb")
    for variant in (wrapped, bare):
        got, _ = to_paddle(variant, "fb")
        assert sorted(got) == sorted(reference)


def _bilinear_align_corners(grid, new_side):
    """Naive loop: ``[S, S, C]`` -> ``[new_side, new_side, C]`` sampling corner to corner."""
    side = grid.shape[0]
    out = np.zeros((new_side, new_side, grid.shape[2]), "float64")
    for i in range(new_side):
        for j in range(new_side):
            y = i * (side - 1) / (new_side - 1)
            x = j * (side - 1) / (new_side - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, side - 1), min(x0 + 1, side - 1)
            dy, dx = y - y0, x - x0
            out[i, j] = ((1 - dy) * (1 - dx) * grid[y0, x0] + (1 - dy) * dx * grid[y0, x1]
                         + dy * (1 - dx) * grid[y1, x0] + dy * dx * grid[y1, x1])
    return out


def test_more_frames_and_larger_images_load_through_embedding_resize(tmp_path, tiny_cfg):
    src = _fb_state(np.random.RandomState(5))
    _save_pyth(src, tmp_path / "tiny.pyth")
    # num_seg 4 -> 8 and img 32 -> 64 (4x4 -> 8x8 patch grid), as 8 -> 16 frames and 224 -> 448 px.
    for key, value in (("MODEL.backbone.num_seg", 8), ("MODEL.backbone.img_size", 64),
                       ("MODEL.runtime_cfg.test.num_seg", 8)):
        section, name = key.rsplit(".", 1)
        node = tiny_cfg
        for part in section.split("."):
            node = node[part]
        node[name] = value
    out = tmp_path / "tiny.pdparams"
    tool = load_tool("tools/convert_checkpoint.py")
    assert tool.main(["--from", "fb", str(tmp_path / "tiny.pyth"), "-o", str(out),
                      "-c", save_config(tiny_cfg, tmp_path / "big.yaml"), "--source-num-heads", str(HEADS)]) == 0

    model = build_model(tiny_cfg.MODEL)
    load_checkpoint(model, str(out))
    own = {k: v.numpy() for k, v in model.state_dict().items()}
    expected_time = src["model.time_embed"][:, [t * 4 // 8 for t in range(8)]]
    np.testing.assert_array_equal(own["backbone.time_embed"], expected_time)
    pos = src["model.pos_embed"][0]
    np.testing.assert_array_equal(own["backbone.pos_embed"][0, 0], pos[0])
    grid = _bilinear_align_corners(pos[1:].reshape(4, 4, DIM).astype("float64"), 8).reshape(64, DIM)
    np.testing.assert_allclose(own["backbone.pos_embed"][0, 1:], grid, atol=1e-5)
    model.eval()
    with paddle.no_grad():
        scores = model(paddle.randn([1, 3, 8, 64, 64]), mode="infer")
    assert scores.shape == [1, CLASSES]


def test_config_that_disagrees_with_checkpoint_is_named(tiny_cfg):
    settings = {"MODEL.head.num_classes": 600, "MODEL.backbone.num_seg": 16, "MODEL.backbone.embed_dim": 64}
    conflicts, resized = compare_settings(tiny_cfg, settings, "fb")
    assert conflicts == ["MODEL.head.num_classes: config 10 vs checkpoint 600"]
    assert resized == ["MODEL.backbone.num_seg: config 4 vs checkpoint 16"]


def test_hf_config_mapping_and_unsupported_activation():
    config = json.loads(TimesformerConfig(image_size=448, num_frames=16, num_labels=600).to_json_string())
    settings = settings_from_hf_config(config)
    assert settings["MODEL.backbone.img_size"] == 448 and settings["MODEL.backbone.num_seg"] == 16
    assert settings["MODEL.head.num_classes"] == 600 and settings["MODEL.backbone.mlp_ratio"] == 4.0
    assert settings["MODEL.backbone.epsilon"] == 1e-6
    config["hidden_act"] = "gelu_new"
    with pytest.raises(ConversionError, match="gelu_new"):
        settings_from_hf_config(config)


# Variant configs: (frames, image size) per size and classes per dataset, from the original model zoo.
SIZES = {"": (8, 224), "hr_": (16, 448), "l_": (96, 224)}
CLASSES_OF = {"k400": 400, "k600": 600, "ssv2": 174}
VARIANTS = [f"{size}{data}" for size in SIZES for data in CLASSES_OF if f"{size}{data}" != "k400"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_config_matches_its_checkpoint_and_states_normalisation(variant):
    from paddlevideo.loader.builder import build_pipeline

    path = REPO / "configs" / "recognition" / "timesformer" / f"timesformer_{variant}_videos.yaml"
    size, data = (variant.split("_", 1) if "_" in variant else ("", variant))
    size = size + "_" if size else ""
    frames, img = SIZES[size]
    if variant == "l_ssv2":
        frames = 64  # the original's SSv2 L model uses 64 frames
    text = path.read_text()
    assert "Normalisation" in text and "mean 0.45 and std 0.225" in text
    cfg = get_config(str(path), show=False)
    hf_like = json.loads(TimesformerConfig(image_size=img, num_frames=frames, num_labels=CLASSES_OF[data],
                                           layer_norm_eps=1e-6).to_json_string())
    conflicts, resized = compare_settings(cfg, settings_from_hf_config(hf_like), "hf")
    assert conflicts == [] and resized == []
    assert cfg.MODEL.runtime_cfg.test.num_seg == frames
    assert (cfg.INFERENCE.num_seg, cfg.INFERENCE.target_size) == (frames, img)
    for mode in ("train", "valid", "test"):
        section = cfg.PIPELINE[mode]
        assert section.decode.num_seg == section.sample.num_seg == frames
        names = [next(iter(item)) for item in section.transform]
        norm = section.transform[names.index("Normalization")]["Normalization"]
        assert norm["mean"] == [0.45] * 3 and norm["std"] == [0.225] * 3
        crop = section.transform[-1 if mode != "train" or data == "ssv2" else -2]
        assert next(iter(crop.values()))["target_size"] == img
        assert ("RandomFlip" in names) == (mode == "train" and data != "ssv2")
        build_pipeline(section)


def test_ssv2_test_pipeline_runs_segment_sampling(tmp_path):
    from paddlevideo.loader.builder import build_pipeline
    from test_multiclip import write_index_video

    cfg = get_config(str(REPO / "configs/recognition/timesformer/timesformer_ssv2_videos.yaml"), show=False)
    video = write_index_video(tmp_path / "v.avi", num_frames=40)
    results = build_pipeline(cfg.PIPELINE.test)({"filename": video})
    assert results["frame_idx"].tolist() == [2 + 5 * i for i in range(8)]  # centres of 8 segments of 5 frames
    assert results["imgs"].shape == (3, 3 * 8, 224, 224)
