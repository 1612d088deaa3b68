"""Config loading, overrides and registries: values, and errors that name the culprit."""

import pytest

from paddlevideo.config import AttrDict, ConfigError, get_config, override_config
from paddlevideo.common.registry import Registry, build_from_config
from paddlevideo.common.safe_yaml import load_yaml


@pytest.fixture
def yaml_file(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "MODEL:\n  framework: RecognizerTransformer\n"
        "  backbone:\n    name: VisionTransformer\n    epsilon: 1e-6\n    depth: 12\n"
        "  head:\n    name: TimeSformerHead\n    num_classes: 10\n"
        "PIPELINE:\n  train:\n    transform:\n      - Normalization:\n          mean: [0.45, 0.45, 0.45]\n"
        "          std: [0.225, 0.225, 0.225]\n"
        "      - RandomFlip:\n"
        "epochs: 15\n"
    )
    return path


def test_yaml_values_and_attribute_access(yaml_file):
    cfg = get_config(str(yaml_file), show=False)
    assert isinstance(cfg, AttrDict)
    assert cfg.MODEL.backbone.name == "VisionTransformer"
    # "1e-6" without a dot is a string to plain YAML 1.1; configs mean a float.
    assert cfg.MODEL.backbone.epsilon == pytest.approx(1e-6) and isinstance(cfg.MODEL.backbone.epsilon, float)
    assert cfg.PIPELINE.train.transform[0].Normalization.mean == [0.45, 0.45, 0.45]
    assert cfg.PIPELINE.train.transform[1] == {"RandomFlip": None}


def test_overrides_parse_yaml_values(yaml_file):
    cfg = get_config(
        str(yaml_file),
        ["MODEL.backbone.depth=2", "epochs=1e2", "MODEL.backbone.pretrained=",
         "PIPELINE.train.transform.0.Normalization.mean=[0.5, 0.5, 0.5]", "MODEL.backbone.qkv_bias=False"],
        show=False,
    )
    assert cfg.MODEL.backbone.depth == 2
    assert cfg.epochs == 100.0
    assert cfg.MODEL.backbone.pretrained == ""
    assert cfg.PIPELINE.train.transform[0].Normalization.mean == [0.5, 0.5, 0.5]
    assert cfg.MODEL.backbone.qkv_bias is False


def test_override_of_new_dict_becomes_attrdict(yaml_file):
    cfg = get_config(str(yaml_file), ["MODEL.runtime_cfg={test: {num_seg: 4}}"], show=False)
    assert cfg.MODEL.runtime_cfg.test.num_seg == 4


@pytest.mark.parametrize(
    "override, culprit",
    [
        ("MODLE.backbone.depth=2", "MODLE"),
        ("MODEL.backbon.depth=2", "MODEL.backbon"),
        ("PIPELINE.train.transform.7.x=1", "7"),
        ("MODEL.backbone.depth.x=1", "MODEL.backbone.depth"),
        ("MODEL.backbone.depth", "MODEL.backbone.depth"),
    ],
)
def test_bad_override_names_the_path(yaml_file, override, culprit):
    with pytest.raises(ConfigError, match=culprit.replace(".", r"\.")):
        get_config(str(yaml_file), [override], show=False)


def test_missing_config_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml"):
        get_config(str(missing), show=False)


def test_invalid_yaml_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        get_config(str(bad), show=False)


def test_override_config_in_place():
    cfg = AttrDict({"a": AttrDict({"b": 1})})
    assert override_config(cfg, ["a.b=3"]) is cfg and cfg.a.b == 3
    assert load_yaml("x: 2e-3")["x"] == pytest.approx(2e-3)


def test_registry_builds_and_lists_known_names():
    reg = Registry("widget")

    @reg.register()
    class Knob:
        def __init__(self, size=1):
            self.size = size

    assert build_from_config({"name": "Knob", "size": 3}, reg).size == 3
    with pytest.raises(KeyError, match=r"unknown widget name 'Dial'; known widgets: Knob"):
        build_from_config({"name": "Dial"}, reg)
    with pytest.raises(TypeError, match="widget 'Knob'.*colour"):
        build_from_config({"name": "Knob", "colour": "red"}, reg)
    with pytest.raises(KeyError, match="registered twice"):
        reg.register(type("Knob", (), {}))


def test_library_import_has_no_side_effects():
    import logging
    import subprocess
    import sys

    code = (
        "import logging, os, sys; before = dict(os.environ); import paddlevideo, paddlevideo.common, paddlevideo.utils; "
        "assert dict(os.environ) == before; assert not logging.getLogger('paddlevideo').handlers; "
        "assert 'paddle' not in sys.modules, 'paddle imported at package import'; "
        "import paddlevideo.common.files, paddlevideo.common.save_load; "
        "assert dict(os.environ) == before and 'paddle' not in sys.modules, 'a helper changed the process'"
    )
    repo = __import__("pathlib").Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert logging.getLogger("paddlevideo") is not None


def test_save_config_round_trips(yaml_file, tmp_path):
    from paddlevideo.config import save_config

    cfg = get_config(str(yaml_file), ["MODEL.backbone.depth=3"], show=False)
    again = get_config(str(save_config(cfg, tmp_path / "out" / "saved.yaml")), show=False)
    assert again == cfg and again.MODEL.backbone.depth == 3
    assert isinstance(again.MODEL.backbone.epsilon, float)


# --- _BASE_ inheritance: PaddleDetection's merge rule -------------------------------------------------------

def _write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_merge_rule(tmp_path):
    from paddlevideo.config.inherit import read_config_file

    _write(tmp_path, "_base_/first.yaml", "A: {x: 1, y: 1, deep: {k: 1, keep: 1}}\nL: [1, 2, 3]\nS: first\nonly_first: 1\n")
    _write(tmp_path, "_base_/second.yaml", "A: {y: 2, deep: {k: 2}}\nL: [9]\nS: second\n")
    top = _write(tmp_path, "configs/top.yaml",
                 "_BASE_: [../_base_/first.yaml, ../_base_/second.yaml]\nA: {x: 3}\nS: top\nL: [7, 8]\n")
    data, _ = read_config_file(str(top))
    # later bases override earlier ones, the including file overrides both; mappings merge key by key
    assert data["A"] == {"x": 3, "y": 2, "deep": {"k": 2, "keep": 1}}
    assert data["S"] == "top" and data["only_first"] == 1
    assert data["L"] == [7, 8]  # lists replace whole
    assert "_BASE_" not in data


def test_base_replaces_with_non_mappings_and_allows_diamonds(tmp_path):
    from paddlevideo.config.inherit import read_config_file

    _write(tmp_path, "root.yaml", "A: {x: 1}\nB: {y: 1}\n")
    _write(tmp_path, "left.yaml", "_BASE_: root.yaml\nB: {y: 2}\n")  # one base as a plain string
    _write(tmp_path, "right.yaml", "_BASE_: [root.yaml]\nC: 3\n")
    top = _write(tmp_path, "top.yaml", "_BASE_: [left.yaml, right.yaml]\nA: null\n")
    data, _ = read_config_file(str(top))
    # right.yaml re-reads root.yaml (a diamond, not a cycle), so B.y comes back to 1; A: null replaces the mapping
    assert data == {"A": None, "B": {"y": 1}, "C": 3}


def test_base_of_a_base_is_relative_to_the_base(tmp_path):
    from paddlevideo.config.inherit import read_config_file

    _write(tmp_path, "a/_base_/inner.yaml", "epochs: 7\n")
    _write(tmp_path, "a/_base_/outer.yaml", "_BASE_: [inner.yaml]\nlog_interval: 3\n")
    top = _write(tmp_path, "b/top.yaml", f"_BASE_: [{tmp_path / 'a' / '_base_' / 'outer.yaml'}]\n")  # absolute works
    assert read_config_file(str(top))[0] == {"epochs": 7, "log_interval": 3}


def test_variant_overrides_reach_the_resolved_config(tmp_path):
    """A user's variant of the K400 config states its differences; everything else comes from the bases."""
    from conftest import K400_CONFIG

    mine = _write(tmp_path, "mine.yaml", f"_BASE_: [{K400_CONFIG}]\nMODEL: {{backbone: {{num_seg: 16}}}}\nepochs: 3\n")
    cfg = get_config(str(mine), ["DATASET.batch_size=2"], show=False)
    assert cfg.epochs == 3 and cfg.DATASET.batch_size == 2 and cfg.MODEL.backbone.depth == 12
    assert cfg.PIPELINE.train.sample.num_seg == 16 and cfg.INFERENCE.num_seg == 16


# --- overrides and saving ------------------------------------------------------------------------------------

def test_override_gives_keys_to_an_operator_written_without_any(tmp_path):
    path = _write(tmp_path, "c.yaml", "MODEL: {framework: RecognizerTransformer, backbone: {name: VisionTransformer, "
                                      "img_size: 32, patch_size: 8}, head: {name: TimeSformerHead, num_classes: 3}}\n"
                                      "PIPELINE: {train: {transform: [{RandomFlip: null}, {RandomCrop: null}]}}\n")
    cfg = get_config(str(path), ["PIPELINE.train.transform.0.RandomFlip.p=0.25"], show=False)
    assert cfg.PIPELINE.train.transform[0] == {"RandomFlip": {"p": 0.25}}
    assert cfg.PIPELINE.train.transform[1] == {"RandomCrop": {"target_size": 32}}  # derived from img_size


def test_save_config_lets_derived_keys_follow_their_source(tiny_cfg, tmp_path):
    from paddlevideo.config import save_config

    saved = load_yaml((tmp_path / "same.yaml").read_text() if save_config(tiny_cfg, tmp_path / "same.yaml") else "")
    assert "num_seg" not in saved["INFERENCE"] and "num_seg" not in saved["PIPELINE"]["test"]["sample"]
    assert saved["PIPELINE"]["train"]["transform"][3] == {"RandomCrop": None}
    assert get_config(str(tmp_path / "same.yaml"), show=False) == tiny_cfg

    tiny_cfg.MODEL.backbone.num_seg = 6  # changed in code after loading: the derived keys follow on reload
    tiny_cfg.INFERENCE.target_size = 32  # still its derived value: left out as well
    again = get_config(save_config(tiny_cfg, tmp_path / "six.yaml"), show=False)
    assert again.PIPELINE.test.sample.num_seg == again.INFERENCE.num_seg == again.MODEL.runtime_cfg.test.num_seg == 6
    tiny_cfg.INFERENCE.num_seg = 5  # a derived key changed by hand is kept, and then disagrees
    with pytest.raises(ConfigError, match=r"INFERENCE.num_seg \(5\)"):
        get_config(save_config(tiny_cfg, tmp_path / "five.yaml"), show=False)


def test_deepcopy_keeps_the_record_of_derived_keys(tiny_cfg, tmp_path):
    import copy

    from paddlevideo.config import save_config

    clone = copy.deepcopy(tiny_cfg)
    clone.MODEL.backbone.num_seg = 2
    assert get_config(save_config(clone, tmp_path / "c.yaml"), show=False).PIPELINE.valid.decode.num_seg == 2


# --- the schema is the one place that knows the keys ---------------------------------------------------------

def test_every_constructor_key_has_a_rule():
    from paddlevideo.config import schema

    assert schema.unruled_keys() == []


def _config_reads(path):
    """``[(key path, default or MISSING, line)]`` of reads rooted at a variable ``cfg`` (the whole config):
    ``cfg.A.b``, ``cfg["A"]``, ``cfg.get("a", default)``, ``cfg.A.get("b")``."""
    import ast

    from paddlevideo.config.schema import MISSING

    def chain(node):
        keys = []
        while True:
            if isinstance(node, ast.Attribute):
                keys.append(node.attr)
                node = node.value
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                keys.append(node.slice.value)
                node = node.value
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                keys.append(node.args[0].value)
                node = node.func.value
            elif isinstance(node, ast.Name) and node.id == "cfg":
                return keys[::-1]
            else:
                return None

    reads = []
    for node in ast.walk(ast.parse(path.read_text())):
        keys = chain(node)
        if not keys or keys[-1] in ("get", "items", "keys", "values", "copy", "update", "pop", "setdefault"):
            continue
        default = MISSING
        if isinstance(node, ast.Call) and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            default = node.args[1].value
        reads.append((tuple(keys), default, node.lineno))
    return reads


def _engine_files():
    from conftest import REPO

    return sorted((REPO / "paddlevideo" / "tasks").glob("*.py")) + [REPO / "main.py"] + sorted((REPO / "tools").rglob("*.py"))


def _schema_lookup(keys):
    """The schema Field for ``keys`` (stopping at a component, whose keys come from its class), or None."""
    from paddlevideo.config import schema

    spec = schema.top_level()
    for index, key in enumerate(keys):
        if not isinstance(spec, schema.Section) or key not in spec.fields:
            return None
        field = spec.fields[key]
        if not isinstance(field.spec, schema.Section) or index == len(keys) - 1:
            return field
        spec = field.spec
    return None


def test_every_key_the_engine_reads_is_in_the_schema():
    missing = [f"{path.name}:{line} cfg.{'.'.join(map(str, keys))}" for path in _engine_files()
               for keys, _, line in _config_reads(path) if _schema_lookup(keys) is None]
    assert missing == []


def test_engine_fallbacks_equal_the_schema_defaults():
    from paddlevideo.config.schema import MISSING

    differ = []
    for path in _engine_files():
        for keys, default, line in _config_reads(path):
            field = _schema_lookup(keys)
            if default is MISSING or field is None:
                continue
            if field.default != default:
                differ.append(f"{path.name}:{line} cfg.{'.'.join(keys)} falls back to {default!r}, the schema says "
                              f"{field.default!r}")
    assert differ == []


def test_optimizer_keys_match_what_the_solver_reads():
    import ast
    import inspect

    from paddlevideo.config import schema
    from paddlevideo.solver import build_grad_clip, build_lr, optimizer

    popped = {node.args[0].value for node in ast.walk(ast.parse(inspect.getsource(optimizer)))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "pop"
              and node.args and isinstance(node.args[0], ast.Constant)}
    declared = set().union(*(schema.component_keys("optimizer", name) for name in schema.registry("optimizer")))
    assert declared | {"name"} == popped
    for name in schema.registry("lr"):  # every schedule the schema accepts builds
        required = {k: v for k, v in {"learning_rate": 0.1, "milestones": [1], "warmup_start_lr": 0.01,
                                      "warmup_epochs": 1, "cosine_base_lr": 0.1, "max_epoch": 2}.items()
                    if k in schema.component_keys("lr", name)}
        assert build_lr({"name": name, **required}, updates_per_epoch=2, epochs=2) is not None
    grad_clip = schema.component_keys("optimizer", "Momentum")["grad_clip"].spec.mapping.fields["name"].spec
    for name in grad_clip.text.split("one of ", 1)[1].split(", "):
        assert build_grad_clip({"name": name, "value": 1.0}) is not None


def _logged(function, *args):
    """The messages ``function(*args)`` logs on the project logger at INFO."""
    import logging

    records, handler, logger = [], logging.Handler(logging.INFO), logging.getLogger("paddlevideo")
    handler.emit = records.append
    level, logger.level = logger.level, logging.INFO
    logger.addHandler(handler)
    try:
        function(*args)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return [record.getMessage() for record in records]


def test_resolution_fills_the_engine_defaults_and_saving_leaves_them_out(tmp_path):
    """The engine reads ``cfg.log_interval`` directly: resolution fills every absent engine key with the schema's
    default (recorded as ``default``) and the two batch sizes with ``DATASET.batch_size``; a stated value wins,
    and ``save_config`` writes only what was stated."""
    from paddlevideo.config import log_config, read_config, save_config, schema

    path = _write(tmp_path, "c.yaml", "MODEL: {framework: RecognizerTransformer, backbone: {name: VisionTransformer, "
                                      "img_size: 32, patch_size: 8}, head: {name: TimeSformerHead, num_classes: 3}}\n"
                                      "DATASET: {batch_size: 6, test_batch_size: 2}\nepochs: 3\n")
    cfg, origins = read_config(str(path))
    expected = {"model_name": "model", "log_interval": 10, "save_interval": 1, "log_level": "INFO",
                "output_dir": None, "resume_epoch": 0, "use_visualdl": False}
    assert {key: cfg[key] for key in expected} == expected and cfg.epochs == 3
    assert all(origins[(key,)] == "default" for key in expected) and origins[("epochs",)] != "default"
    assert cfg.DATASET.num_workers == 0 and origins[("DATASET", "num_workers")] == "default"
    assert cfg.DATASET.valid_batch_size == 6 and cfg.DATASET.test_batch_size == 2
    assert origins[("DATASET", "valid_batch_size")] == "default (DATASET.batch_size)"
    saved = load_yaml(open(save_config(cfg, tmp_path / "saved.yaml")).read())
    assert set(saved) == {"MODEL", "DATASET", "epochs"} and saved["DATASET"] == {"batch_size": 6, "test_batch_size": 2}
    lines = [line.strip() for line in _logged(log_config, cfg)]  # the config as written, with its derived keys
    assert "epochs: 3" in lines and "test_batch_size: 2" in lines and "num_seg: 8" in lines
    assert not any(line.split(":")[0] in {*expected, "num_workers", "valid_batch_size"} for line in lines), lines
    # constructor keys keep their default in the constructor alone: the schema only reads it
    assert schema.component_keys("backbone", "VisionTransformer")["num_seg"].default == 8


def test_constructor_annotations_are_the_rules():
    """A constructor argument's annotation is its rule: the words of common/rules.py, plain types, Optional."""
    import inspect
    from typing import Optional

    from paddlevideo.config import schema
    from paddlevideo.common import rules

    assert rules.rule_of(bool)(1) == "must be true or false, got 1" and rules.rule_of(str)(3) == "must be a string, got 3"
    assert rules.rule_of(int)(2.0) is None and rules.rule_of(int).convert(2.0) == 2 and rules.rule_of(int)(2.5)
    assert rules.rule_of(float)(True) == "must be a number, got True"
    assert rules.rule_of(Optional[rules.Positive])(None) is None
    assert rules.rule_of(Optional[rules.Positive])(0) == "must be > 0, got 0"
    assert rules.rule_of(rules.OneOf("a", "b"))("c") == "'c' is unknown; use one of a, b"
    assert rules.rule_of(rules.ListOf(float))([1, "x"]) == "item 1 must be a number, got 'x'"
    assert all(rules.rule_of(a) is None for a in (inspect.Parameter.empty, dict, Optional[dict], "float"))
    keys = schema.component_keys("backbone", "VisionTransformer")
    assert keys["qk_scale"].spec.text == "a number > 0, or null" and keys["img_size"].spec.text == "an integer >= 1"
    assert keys["attention_type"].spec.values == ("divided_space_time", "space_only", "joint_space_time")
    assert schema.component_keys("lr", "MultiStepDecay")["milestones"].spec.text == \
        "a list (each an integer >= 0, increasing)"


def test_paddlevideo_import_path_gives_the_config_objects():
    """``from paddlevideo.utils import get_config`` (PaddleVideo's path) keeps working and gives the config package's
    own objects; ``paddlevideo.utils`` stands above the library: no library module imports it, and no module of
    ``paddlevideo.common`` (the helpers every floor uses) imports the config package."""
    import ast

    import paddlevideo.common.logger as logger
    import paddlevideo.common.save_load as save_load
    import paddlevideo.config as config
    import paddlevideo.utils as utils
    from conftest import REPO
    from paddlevideo.utils import (AttrDict, ConfigError, get_config, get_logger, load, override_config,
                                   parse_overrides, save, setup_logger, validate_config)

    assert (AttrDict, ConfigError, get_config, override_config, parse_overrides, validate_config) == (
        config.AttrDict, config.ConfigError, config.get_config, config.override_config, config.parse_overrides,
        config.validate_config)
    assert get_config is config.loading.get_config and AttrDict is config.attrdict.AttrDict
    assert (get_logger, setup_logger, load, save) == (logger.get_logger, logger.setup_logger, save_load.load,
                                                     save_load.save)
    with pytest.raises(AttributeError, match="no_such_name"):
        utils.no_such_name  # noqa: B018

    def imported(path):
        """The absolute module names ``path`` imports."""
        package = ".".join(path.relative_to(REPO).with_suffix("").parts)
        if path.name != "__init__.py":
            package = package.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                module = ".".join(part for part in (base, node.module) if part)
                yield module
                yield from (f"{module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)

    library = [p for p in (REPO / "paddlevideo").rglob("*.py") if "utils" not in p.relative_to(REPO).parts]
    for path in library:
        bad = [m for m in imported(path) if m == "paddlevideo.utils" or m.startswith("paddlevideo.utils.")]
        assert not bad, (path, bad)
    for path in sorted((REPO / "paddlevideo" / "common").glob("*.py")):
        bad = [m for m in imported(path) if m.startswith("paddlevideo.config")]
        assert not bad, (path, bad)


TINY_BACKBONE = {"img_size": 16, "patch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 2, "num_seg": 2}


def _construct(kind, cls, key, value):
    if kind == "backbone":
        return cls(**TINY_BACKBONE, **{key: value})
    if kind == "operator":
        return cls(**{key: value})
    raise AssertionError(kind)


def test_choices_are_what_the_constructors_accept():
    """Each choice a constructor's annotation states builds, and a value outside them is refused by the constructor
    as well (so the annotation and the constructor's own check do not drift)."""
    from paddlevideo.config import schema
    from paddlevideo.modeling import build_model

    checked = 0
    for kind in ("backbone", "operator"):
        for name, cls in schema.registry(kind).items():
            for key, item in schema.component_keys(kind, name).items():
                for value in getattr(item.spec, "values", None) or ():
                    _construct(kind, cls, key, value)
                if getattr(item.spec, "values", None):
                    with pytest.raises(ValueError):
                        _construct(kind, cls, key, "no_such_choice")
                    checked += 1
    assert checked >= 9  # attention_type, attention_impl, kernels (of 2 backbones); backend, mode, data_format
    model = {"framework": "RecognizerTransformer", "backbone": {"name": "VisionTransformer", **TINY_BACKBONE},
             "head": {"name": "TimeSformerHead", "num_classes": 3, "in_channels": 16}}
    avg_type = schema.key_rules()["framework"]["runtime_cfg"].fields["test"].spec.fields["avg_type"].spec
    for value in avg_type.values:
        build_model({**model, "runtime_cfg": {"test": {"avg_type": value}}})
    with pytest.raises(ValueError):
        build_model({**model, "runtime_cfg": {"test": {"avg_type": "no_such_choice"}}})
