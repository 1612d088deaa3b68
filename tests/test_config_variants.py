"""The TimeSformer configs after the move to _BASE_ inheritance: same effective values, each fact stated once."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import K400_CONFIG, REPO, TINY_OVERRIDES
from paddlevideo.config.inherit import read_config_file
from paddlevideo.config import get_config, read_config, to_plain
from paddlevideo.common.safe_yaml import load_yaml

CONFIG_DIR = REPO / "configs" / "recognition" / "timesformer"
VARIANTS = sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))
# Resolved configs of the flat files before the move (tests/data/dump_effective_configs.py, run on them).
BEFORE = json.loads((Path(__file__).parent / "data" / "effective_configs.json").read_text())

NUM_CLIPS = ("PIPELINE", "test", "decode", "num_clips")
K400_LABELS = ("INFERENCE", "label_file")
# Keys the move added on purpose; every other key keeps its value.
ADDED = {
    # _base_/kinetics.yaml states the test decoder's num_clips once (1, its default) for every Kinetics config
    "timesformer_k400_videos.yaml": {NUM_CLIPS: 1},
    "timesformer_ucf101_videos.yaml": {NUM_CLIPS: 1},
    "timesformer_demo_videos.yaml": {NUM_CLIPS: 1},
    "tiny": {NUM_CLIPS: 1},
    # the Kinetics-400 label list is a fact of the K400 data (_base_/k400.yaml): the HR and L K400 models get it too
    "timesformer_hr_k400_videos.yaml": {K400_LABELS: "data/k400/Kinetics-400_label_list.txt"},
    "timesformer_l_k400_videos.yaml": {K400_LABELS: "data/k400/Kinetics-400_label_list.txt"},
}
# Keys that follow MODEL.backbone (paddlevideo/config/derive.py); no config file states them any more.
DERIVED_IN_SECTION = {("MODEL", "runtime_cfg", "test"): "num_seg", ("INFERENCE",): ("num_seg", "target_size"),
                      ("MODEL", "head"): "in_channels"}


def leaves(node, path=()):
    """``{path: value}`` of every value; transform lists are walked item by item."""
    if isinstance(node, dict) and node:
        out = {}
        for key, value in node.items():
            out.update(leaves(value, path + (key,)))
        return out
    if isinstance(node, list) and node and all(isinstance(item, dict) for item in node):
        out = {}
        for index, item in enumerate(node):
            out.update(leaves(item, path + (index,)))
        return out
    return {path: node}


def as_json(cfg):
    return json.loads(json.dumps(to_plain(cfg)))


def resolved(path, overrides=()):
    """``(config as JSON, paths resolution filled with a default)``: the fixture predates the filling of the engine
    keys' defaults (and of the batch sizes that follow DATASET.batch_size), which adds keys but no values."""
    cfg, origins = read_config(str(path), list(overrides))
    filled = {p for p, where in origins.items() if where.startswith("default")}
    return as_json(cfg), filled


def differences(before, after, added, filled=()):
    old, new = leaves(before), leaves(after)
    # the JSON fixture turned tuple keys' int indices into ints already; compare as sets of paths
    changed = {p: (old[p], new.get(p, "<absent>")) for p in old if new.get(p, "<absent>") != old[p]}
    extra = {p: new[p] for p in new if p not in old and p not in filled}
    return changed, {p: v for p, v in extra.items() if added.get(p, "<not listed>") != v}


@pytest.mark.parametrize("name", VARIANTS)
def test_every_config_resolves_to_its_values_before_the_move(name):
    after, filled = resolved(CONFIG_DIR / name)
    changed, unlisted = differences(BEFORE[name], after, ADDED.get(name, {}), filled)
    assert changed == {} and unlisted == {}
    for path, value in ADDED.get(name, {}).items():  # the listed additions are really there
        assert leaves(as_json(get_config(str(CONFIG_DIR / name), show=False)))[path] == value


def test_the_tiny_config_resolves_as_before_and_as_the_old_29_overrides():
    old_overrides = [
        "MODEL.backbone.pretrained=", "MODEL.backbone.img_size=32", "MODEL.backbone.patch_size=8",
        "MODEL.backbone.embed_dim=64", "MODEL.backbone.depth=2", "MODEL.backbone.num_heads=4",
        "MODEL.backbone.num_seg=4", "MODEL.head.num_classes=10", "MODEL.head.in_channels=64",
        "MODEL.runtime_cfg.test.num_seg=4", "INFERENCE.num_seg=4", "INFERENCE.target_size=32",
        "DATASET.num_workers=0", "DATASET.test_batch_size=2",
    ] + [f"PIPELINE.{mode}.{step}.num_seg=4" for mode in ("train", "valid", "test") for step in ("decode", "sample")] + [
        f"PIPELINE.{mode}.transform.{index}.{op}.{key}={value}"
        for mode, short in (("train", (32, 40)), ("valid", (32, 40)), ("test", (32, 32)))
        for index, op, key, value in ((2, "JitterScale", "min_size", short[0]), (2, "JitterScale", "max_size", short[1]),
                                      (3, "UniformCrop" if mode == "test" else "RandomCrop", "target_size", 32))
    ]
    assert len(old_overrides) == 29 and len(TINY_OVERRIDES) < 15
    new, filled = resolved(K400_CONFIG, TINY_OVERRIDES)
    assert new == as_json(get_config(str(K400_CONFIG), old_overrides, show=False))
    changed, unlisted = differences(BEFORE["tiny"], new, ADDED["tiny"], filled)
    assert changed == {} and unlisted == {}


def _files_of(path):
    """``path`` and every base it reaches, each as its own parsed YAML."""
    data = load_yaml(path.read_text())
    bases = data.get("_BASE_") or []
    found = {path: data}
    for base in [bases] if isinstance(bases, str) else bases:
        found.update(_files_of((path.parent / base).resolve()))
    return found


@pytest.mark.parametrize("name", VARIANTS)
def test_no_config_file_states_a_derived_key(name):
    for path, data in _files_of(CONFIG_DIR / name).items():
        for section, keys in DERIVED_IN_SECTION.items():
            node = data
            for part in section:
                node = (node or {}).get(part) if isinstance(node, dict) else None
            for key in (keys,) if isinstance(keys, str) else keys:
                assert not (isinstance(node, dict) and key in node), f"{path.name} states {'.'.join(section)}.{key}"
        for mode, pipeline in (data.get("PIPELINE") or {}).items():
            for step in ("decode", "sample"):
                assert "num_seg" not in ((pipeline or {}).get(step) or {}), f"{path.name}: PIPELINE.{mode}.{step}.num_seg"
            for item in (pipeline or {}).get("transform") or []:
                (op, params), = item.items()
                assert "target_size" not in (params or {}), f"{path.name}: {mode} {op}.target_size"


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_inherit_and_state_their_differences(name):
    text = (CONFIG_DIR / name).read_text()
    assert "_BASE_" in load_yaml(text)
    limit = 75 if name == "timesformer_demo_videos.yaml" else 42  # the demo is a different recipe (tiny, AdamW)
    assert len(text.splitlines()) <= limit


@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "timesformer_demo_videos.yaml"])
def test_num_seg_alone_gives_a_consistent_model_and_pipelines(name):
    cfg = get_config(str(CONFIG_DIR / name), ["MODEL.backbone.num_seg=16"], show=False)
    assert cfg.MODEL.runtime_cfg.test.num_seg == 16 and cfg.INFERENCE.num_seg == 16
    for mode in ("train", "valid", "test"):
        assert cfg.PIPELINE[mode].decode.num_seg == cfg.PIPELINE[mode].sample.num_seg == 16, mode


def test_sixteen_frames_run_through_pipeline_and_model(tmp_path):
    """``-o MODEL.backbone.num_seg=16`` on the tiny config: the test pipeline makes 3 views of 16 frames and the
    model scores them as 3 views (the same as averaging the three views scored one by one)."""
    import paddle

    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.modeling import build_model
    from test_multiclip import write_index_video

    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES + ["MODEL.backbone.num_seg=16"], show=False)
    video = write_index_video(tmp_path / "v.avi", num_frames=40, seed=0)  # noise in one corner: the 3 crops differ
    clip = build_pipeline(cfg.PIPELINE.test, "PIPELINE.test")({"filename": video})["imgs"]
    assert clip.shape == (3, 3 * 16, 32, 32)
    paddle.seed(0)
    model = build_model(cfg.MODEL)
    model.eval()
    with paddle.no_grad():
        scores = model([paddle.to_tensor(clip[None])], mode="test").numpy()
        views = [model.head(model.backbone(paddle.to_tensor(clip[None, :, 16 * v:16 * (v + 1)]))).numpy()
                 for v in range(3)]
    np.testing.assert_allclose(scores, np.mean(views, axis=0), rtol=1e-5, atol=1e-6)


def test_resolved_values_come_from_the_files_named():
    """The origins reported for messages and ``--origins`` name the base that set each value."""
    data, origins = read_config_file(str(CONFIG_DIR / "timesformer_hr_k600_videos.yaml"))
    assert data["MODEL"]["backbone"]["img_size"] == 448 and data["MODEL"]["head"]["num_classes"] == 600
    assert origins[("MODEL", "backbone", "img_size")].endswith("_base_/kinetics_hr.yaml")
    assert origins[("MODEL", "head", "num_classes")].endswith("_base_/k600.yaml")
    assert origins[("MODEL", "backbone", "depth")].endswith("_base_/timesformer_vit_b16.yaml")
    assert "_BASE_" not in data
