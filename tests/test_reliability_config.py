"""Bad configs, one class per test: every one is a one-line ConfigError naming the key, the value and what is
allowed (or the chain of files), raised when the config is read; main.py turns it into one stderr line, exit 1."""

import logging
import subprocess
import sys

import pytest

from conftest import K400_CONFIG, REPO
from paddlevideo.config import ConfigError, get_config, to_plain, validate_config

DEMO = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"


def error_of(config, overrides=()):
    with pytest.raises(ConfigError) as info:
        get_config(str(config), list(overrides), show=False)
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.fixture
def warnings_logged():
    """Warnings the project logger emits (a handler of its own: other tests may have set propagate off)."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("paddlevideo")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


# --- unknown keys, at every level, with the closest known one ------------------------------------------------

@pytest.mark.parametrize("override, key, suggestion", [
    ("save_intervall=3", "save_intervall", "save_interval"),
    ("epoch=1", "epoch", "epochs"),
    ("DATASET.batch_sise=2", "DATASET.batch_sise", "DATASET.batch_size"),
    ("DATASET.train.file_pth=x.list", "DATASET.train.file_pth", "DATASET.train.file_path"),
    ("PIPELINE.train.decode.sampling_rte=4", "PIPELINE.train.decode.sampling_rte", "PIPELINE.train.decode.sampling_rate"),
    ("PIPELINE.test.sample.linspace=True", "PIPELINE.test.sample.linspace", "PIPELINE.test.sample.linspace_sample"),
    ("PIPELINE.train.transform.2.JitterScale.min_siz=300", "PIPELINE.train.transform.2.JitterScale.min_siz",
     "PIPELINE.train.transform.2.JitterScale.min_size"),
    ("MODEL.backbone.num_segs=4", "MODEL.backbone.num_segs", "MODEL.backbone.num_seg"),
    ("MODEL.head.num_class=4", "MODEL.head.num_class", "MODEL.head.num_classes"),
    ("MODEL.runtime_cfg.test.avg=score", "MODEL.runtime_cfg.test.avg", "MODEL.runtime_cfg.test.avg_type"),
    ("MODEL.runtime_cfgs=1", "MODEL.runtime_cfgs", "MODEL.runtime_cfg"),
    ("OPTIMIZER.momentun=0.9", "OPTIMIZER.momentun", "OPTIMIZER.momentum"),
    ("OPTIMIZER.learning_rate.milestone=[3]", "OPTIMIZER.learning_rate.milestone", "OPTIMIZER.learning_rate.milestones"),
    ("GRADIENT_ACCUMULATION.global_batch=8", "GRADIENT_ACCUMULATION.global_batch", "GRADIENT_ACCUMULATION.global_batch_size"),
    ("INFERENCE.labels_file=x.txt", "INFERENCE.labels_file", "INFERENCE.label_file"),
    ("METRICS={name: CenterCropMetric}", "METRICS", "METRIC"),
])
def test_unknown_key_names_the_path_and_the_closest_known_one(override, key, suggestion):
    message = error_of(K400_CONFIG, [override])
    assert f"unknown {'top-level ' if '.' not in key else ''}key {key}" in message
    assert f"did you mean `{suggestion}`?" in message and message.endswith("(set by -o)"), message


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text(f"_BASE_: [{K400_CONFIG}]\nsave_intervall: 5\n")
    message = error_of(config)
    assert "save_intervall" in message and "did you mean `save_interval`?" in message and "mine.yaml" in message


def test_unknown_names_of_classes_are_named_with_the_known_ones():
    assert "did you mean `VisionTransformer`?" in error_of(K400_CONFIG, ["MODEL.backbone.name=VisionTransfomer"])
    message = error_of(K400_CONFIG, ["PIPELINE.train.transform=[{Normalisation: {mean: [1], std: [1]}}]"])
    assert "PIPELINE.train.transform.0" in message and "'Normalisation'" in message and "Normalization" in message
    message = error_of(K400_CONFIG, ["OPTIMIZER.name=Adamw"])
    assert "OPTIMIZER.name" in message and "'Adamw'" in message and "AdamW" in message
    message = error_of(K400_CONFIG, ["OPTIMIZER.learning_rate.name=Cosine"])
    assert "OPTIMIZER.learning_rate.name" in message and "did you mean `WarmupCosine`?" in message


# --- wrong types and impossible values ---------------------------------------------------------------------

@pytest.mark.parametrize("override, words", [
    ("DATASET.batch_size=abc", ["DATASET.batch_size", "'abc'", "an integer >= 1"]),
    ("DATASET.batch_size=0", ["DATASET.batch_size", ">= 1", "got 0"]),
    ("DATASET.batch_size=2.5", ["DATASET.batch_size", "2.5", "integer"]),
    ("epochs=two", ["epochs", "'two'", "integer"]),
    ("epochs=True", ["epochs", "True", "integer"]),
    ("MODEL.backbone.depth=two", ["MODEL.backbone.depth", "'two'", "integer", "VisionTransformer"]),
    ("MODEL.backbone.qkv_bias=yes please", ["MODEL.backbone.qkv_bias", "'yes please'", "true or false"]),
    ("MODEL.backbone.drop_path_rate=1.5", ["MODEL.backbone.drop_path_rate", "1.5", "< 1"]),
    ("MODEL.backbone.attention_type=divided", ["attention_type 'divided' is unknown", "divided_space_time",
                                               "joint_space_time", "VisionTransformer"]),
    ("MODEL.backbone.init_std=0", ["init_std must be > 0", "VisionTransformer"]),
    ("MODEL.head.num_classes=0", ["MODEL.head.num_classes", "got 0"]),
    ("MODEL.runtime_cfg.test.avg_type=vote", ["avg_type 'vote' is unknown", "score, prob"]),
    ("OPTIMIZER.learning_rate.learning_rate=-0.1", ["OPTIMIZER.learning_rate.learning_rate", "-0.1", "> 0"]),
    ("OPTIMIZER.learning_rate=-1", ["OPTIMIZER.learning_rate", "-1", "> 0"]),
    ("OPTIMIZER.learning_rate.milestones=[14, 11]", ["milestones", "increasing", "[14, 11]"]),
    ("OPTIMIZER.weight_decay.value=-1", ["OPTIMIZER.weight_decay.value", "-1", ">= 0"]),
    ("OPTIMIZER.momentum=fast", ["OPTIMIZER.momentum", "'fast'", "number"]),
    ("DATASET.num_workers=-1", ["DATASET.num_workers", "-1", ">= 0"]),
    ("DATASET.train.file_path=", ["DATASET.train.file_path", "empty"]),
    ("DATASET.train.num_retries=-2", ["DATASET.train.num_retries", "-2"]),
    ("PIPELINE.train.decode.backend=ffmpeg", ["backend 'ffmpeg' is unknown", "decord, pyav, cv2"]),
    ("PIPELINE.train.decode.sampling_rate=0", ["PIPELINE.train.decode.sampling_rate", "> 0"]),
    ("PIPELINE.train.transform.4.RandomFlip.p=2", ["PIPELINE.train.transform.4.RandomFlip.p", "<= 1", "got 2"]),
    ("PIPELINE.train.transform.0.Normalization.std=[0.2, 0, 0.2]", ["Normalization.std", "item 1", "> 0"]),
    ("GRADIENT_ACCUMULATION.global_batch_size=0", ["GRADIENT_ACCUMULATION.global_batch_size", "got 0"]),
    ("log_level=info", ["log_level 'info' is unknown", "INFO"]),
    ("log_interval=0", ["log_interval", "got 0"]),
    ("save_interval=-1", ["save_interval", "got -1"]),
    ("resume_epoch=-1", ["resume_epoch", "got -1"]),
    ("model_name=", ["model_name", "empty"]),
    ("use_visualdl=maybe", ["use_visualdl", "'maybe'", "true or false"]),
    ("INFERENCE.name=ppTSM_Inference_helper", ["INFERENCE.name", "'ppTSM_Inference_helper'", "TimeSformer_Inference_helper"]),
    ("DATASET.train.mode=train", ["DATASET.train.mode", "set by the engine"]),
    ("OPTIMIZER.learning_rate.last_epoch=3", ["OPTIMIZER.learning_rate.last_epoch", "set by the engine"]),
])
def test_wrong_type_or_value_names_key_value_and_what_is_allowed(override, words):
    message = error_of(K400_CONFIG, [override])
    for word in words:
        assert word in message, (word, message)


def test_section_of_the_wrong_shape_is_named():
    assert "DATASET must be a mapping" in error_of(K400_CONFIG, ["DATASET=[1, 2]"])
    message = error_of(K400_CONFIG, ["PIPELINE.train.transform={RandomFlip: null}"])
    assert "PIPELINE.train.transform must be a list" in message
    message = error_of(K400_CONFIG, ["PIPELINE.train.transform=[RandomFlip]"])
    assert "PIPELINE.train.transform.0 must be a one-key mapping" in message


@pytest.mark.parametrize("override, words", [
    ("MODEL.backbone.img_size=100", ["MODEL.backbone.img_size (100)", "MODEL.backbone.patch_size (16)"]),
    ("MODEL.backbone.num_heads=5", ["MODEL.backbone.embed_dim (768)", "MODEL.backbone.num_heads (5)"]),
    ("PIPELINE.train.transform.2.JitterScale.min_size=400", ["JitterScale.min_size (400)", "JitterScale.max_size (320)"]),
])
def test_keys_that_cannot_go_together_are_named(override, words):
    message = error_of(K400_CONFIG, [override])
    for word in words:
        assert word in message, (word, message)


def test_missing_required_keys_are_named(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"_BASE_: [{K400_CONFIG}]\nMODEL: {{head: {{num_classes: null}}}}\n")
    assert "MODEL.head.num_classes" in error_of(config)
    assert "needs `std`" in error_of(K400_CONFIG, ["PIPELINE.train.transform.0.Normalization={mean: [0.45]}"])
    assert "DATASET.train needs `format`" in error_of(K400_CONFIG, ["DATASET.train={file_path: a.list}"])
    assert "OPTIMIZER" in error_of(K400_CONFIG, ["OPTIMIZER={name: Momentum}"])  # no learning_rate


# --- keys that must agree ----------------------------------------------------------------------------------

@pytest.mark.parametrize("override, first, second", [
    ("PIPELINE.test.sample.num_seg=16", "MODEL.runtime_cfg.test.num_seg (8", "PIPELINE.test.sample.num_seg (16)"),
    ("INFERENCE.num_seg=16", "MODEL.runtime_cfg.test.num_seg (8", "INFERENCE.num_seg (16)"),
    ("INFERENCE.target_size=256", "MODEL.backbone.img_size (224)", "INFERENCE.target_size (256)"),
    ("PIPELINE.test.transform.3.UniformCrop.target_size=256", "MODEL.backbone.img_size (224)",
     "PIPELINE.test.transform.3.UniformCrop.target_size (256)"),
    ("PIPELINE.train.transform.3.RandomCrop.target_size=200", "MODEL.backbone.img_size (224)",
     "PIPELINE.train.transform.3.RandomCrop.target_size (200)"),
    ("MODEL.head.in_channels=512", "MODEL.backbone.embed_dim (768)", "MODEL.head.in_channels (512)"),
])
def test_disagreement_that_breaks_the_model_names_both_keys(override, first, second):
    message = error_of(K400_CONFIG, [override])
    assert first in message and second in message and "disagree" in message


def test_disagreement_in_a_flat_config(tmp_path):
    """A flat config states every key: changing only the model's frame count leaves the test views at 8, which
    is legal (the time embedding is resized) until runtime_cfg and the test pipeline disagree."""
    import yaml

    flat = tmp_path / "flat.yaml"
    flat.write_text(yaml.safe_dump(to_plain(get_config(str(K400_CONFIG), show=False))))
    cfg = get_config(str(flat), ["MODEL.backbone.num_seg=16"], show=False)
    assert cfg.MODEL.runtime_cfg.test.num_seg == 8 and cfg.PIPELINE.test.sample.num_seg == 8
    message = error_of(flat, ["MODEL.runtime_cfg.test.num_seg=16", "INFERENCE.num_seg=16"])
    assert "MODEL.runtime_cfg.test.num_seg (16)" in message and "PIPELINE.test.sample.num_seg (8)" in message


def test_legal_mismatches_are_warned_about(warnings_logged):
    get_config(str(K400_CONFIG), ["PIPELINE.train.sample.num_seg=16", "MODEL.backbone.img_size=448"], show=False)
    text = [record.getMessage() for record in warnings_logged]
    assert any("PIPELINE.train.sample.num_seg" in t and "resized" in t for t in text), text
    assert any("RandomCrop.target_size 448" in t and "JitterScale" in t for t in text), text


# --- inheritance -------------------------------------------------------------------------------------------

def test_missing_base_names_the_chain(tmp_path):
    (tmp_path / "middle.yaml").write_text("_BASE_: [nowhere/gone.yaml]\nepochs: 2\n")
    top = tmp_path / "top.yaml"
    top.write_text("_BASE_: [middle.yaml]\n")
    message = error_of(top)
    assert "nowhere/gone.yaml" in message and "top.yaml -> " in message and "middle.yaml" in message


def test_inheritance_cycle_names_the_chain(tmp_path):
    (tmp_path / "a.yaml").write_text("_BASE_: [b.yaml]\n")
    (tmp_path / "b.yaml").write_text("_BASE_: [c.yaml]\n")
    (tmp_path / "c.yaml").write_text("_BASE_: [a.yaml]\n")
    message = error_of(tmp_path / "a.yaml")
    assert "cycle" in message and "a.yaml -> " in message and "b.yaml -> " in message and "c.yaml -> " in message
    (tmp_path / "self.yaml").write_text("_BASE_: self.yaml\n")
    assert "cycle" in error_of(tmp_path / "self.yaml")


@pytest.mark.parametrize("text, words", [
    ("_BASE_: [3]\n", ["_BASE_", "list of file paths"]),
    ("_BASE_: {a: b}\n", ["_BASE_", "list of file paths"]),
    ("- just\n- a list\n", ["must hold a mapping"]),
    ("MODEL: [unclosed\n", ["not valid YAML"]),
])
def test_malformed_files_are_named(tmp_path, text, words):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    message = error_of(config)
    assert "bad.yaml" in message
    for word in words:
        assert word in message


def test_broken_base_names_the_base_and_the_including_file(tmp_path):
    (tmp_path / "base.yaml").write_text("epochs: [\n")
    (tmp_path / "top.yaml").write_text("_BASE_: [base.yaml]\n")
    message = error_of(tmp_path / "top.yaml")
    assert "base.yaml" in message and "top.yaml" in message and "not valid YAML" in message


# --- overrides ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("override, words", [
    ("MODEL.backbon.depth=2", ["MODEL.backbon", "did you mean `MODEL.backbone`?"]),
    ("dataset.batch_size=2", ["'dataset'", "did you mean `DATASET`?"]),
    ("PIPELINE.train.transform.9.RandomCrop.target_size=8", ["9", "list of 5"]),
    ("MODEL.backbone.depth.x=1", ["MODEL.backbone.depth", "value, not a section"]),
    ("epochs", ["epochs", "KEY.PATH=value"]),
    ("epochs=[1", ["override 'epochs=[1'", "not valid YAML", "quote a text value"]),
    ("MODEL.backbone.depth={a: [1}", ["MODEL.backbone.depth", "not valid YAML"]),
])
def test_bad_override_path_is_named(override, words):
    message = error_of(K400_CONFIG, [override])
    for word in words:
        assert word in message, (word, message)


# --- PaddleVideo keys we ignore or renamed ------------------------------------------------------------------

def test_paddlevideo_keys_we_ignore_are_dropped_with_one_warning_each(tmp_path, warnings_logged):
    config = tmp_path / "old.yaml"
    config.write_text(
        f"_BASE_: [{K400_CONFIG}]\n"
        "MODEL: {backbone: {seg_num: 8}}\n"  # PaddleVideo's name before num_seg
        "GRADIENT_ACCUMULATION: {num_gpus: 8}\n"
        "INFERENCE: {top_k: 5, short_size: 224}\n"
        "PIPELINE:\n  train:\n    transform:\n"
        "      - Normalization: {mean: [0.45, 0.45, 0.45], std: [0.225, 0.225, 0.225], tensor_shape: [1, 1, 1, 3], "
        "in_tensor: True}\n"
        "      - Image2Array: {data_format: cthw}\n"
    )
    cfg = get_config(str(config), show=False)
    text = [record.getMessage() for record in warnings_logged]
    for key in ("GRADIENT_ACCUMULATION.num_gpus", "INFERENCE.top_k", "INFERENCE.short_size",
                "PIPELINE.train.transform.0.Normalization.in_tensor", "MODEL.backbone.seg_num"):
        assert sum(key in t for t in text) == 1, (key, text)
    assert all("\n" not in t for t in text)
    assert "num_gpus" not in cfg.GRADIENT_ACCUMULATION and "top_k" not in cfg.INFERENCE
    assert "in_tensor" not in cfg.PIPELINE.train.transform[0].Normalization
    assert cfg.MODEL.backbone.num_seg == 8 and "seg_num" not in cfg.MODEL.backbone


def test_paddlevideo_keys_we_cannot_honour_are_errors(tmp_path):
    message = error_of(K400_CONFIG, ["MODEL.backbone.seg_num=16"])
    assert "MODEL.backbone.seg_num" in message and "num_seg" in message


# --- what keeps working ------------------------------------------------------------------------------------

def test_flat_paddlevideo_style_config_loads_unchanged(tmp_path):
    """A config written out in full as PaddleVideo's are (no _BASE_, every key stated) reads back as written."""
    import yaml

    flat = to_plain(get_config(str(K400_CONFIG), show=False))
    path = tmp_path / "timesformer_k400_videos.yaml"
    path.write_text(yaml.safe_dump(flat, sort_keys=False))
    assert to_plain(get_config(str(path), show=False)) == flat


def test_validate_config_checks_configs_built_in_code():
    cfg = to_plain(get_config(str(DEMO), show=False))
    del cfg["INFERENCE"]["num_seg"]
    resolved = validate_config(cfg)
    assert resolved.INFERENCE.num_seg == 8 and "num_seg" not in cfg["INFERENCE"]  # the argument is left alone
    cfg["epoch"] = 3
    with pytest.raises(ConfigError, match="did you mean `epochs`"):
        validate_config(cfg)


# --- the command line --------------------------------------------------------------------------------------

def _run(*args, timeout=240):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, words", [
    (["-o", "epoch=1"], ["epoch", "did you mean `epochs`?"]),
    (["-o", "DATASET.batch_size=abc"], ["DATASET.batch_size", "'abc'"]),
    (["-o", "INFERENCE.num_seg=16"], ["INFERENCE.num_seg (16)", "MODEL.runtime_cfg.test.num_seg (8"]),
    (["-o", "epochs=[1"], ["override 'epochs=[1'", "not valid YAML"]),
])
def test_main_reports_a_bad_config_in_one_line(args, words):
    proc = _run("main.py", "-c", str(K400_CONFIG), *args)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("main.py: error: "), proc.stderr
    for word in words:
        assert word in lines[0]


def test_main_reports_a_missing_base_in_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("_BASE_: [_base_/nope.yaml]\n")
    proc = _run("main.py", "-c", str(config))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "_base_/nope.yaml" in proc.stderr


def test_config_tool_prints_the_resolved_config(tmp_path):
    import yaml

    proc = _run("-m", "paddlevideo.config", str(DEMO), "-o", "MODEL.backbone.num_seg=4")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout) == to_plain(get_config(str(DEMO), ["MODEL.backbone.num_seg=4"], show=False))
    proc = _run("-m", "paddlevideo.config", str(DEMO), "--origins")
    assert "INFERENCE.target_size: 32  # derived from MODEL.backbone.img_size" in proc.stdout
    assert "MODEL.backbone.depth: 2  # " in proc.stdout and "timesformer_demo_videos.yaml" in proc.stdout
    proc = _run("-m", "paddlevideo.config", str(DEMO), "-o", "epoch=1")
    assert proc.returncode == 1 and proc.stderr.strip().startswith("python -m paddlevideo.config: error: ")
    proc = _run("-m", "paddlevideo.config", "--keys")
    assert proc.returncode == 0 and "save_interval: an integer >= 1 [default 1]" in proc.stdout
    assert "VisionTransformer" in proc.stdout and "num_seg: an integer >= 1 [default 8]" in proc.stdout
