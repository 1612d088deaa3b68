"""Config loading, overrides and registries: values, and errors that name the culprit."""

import pytest

from paddlevideo.utils import ConfigError, Registry, build_from_config, get_config, override_config
from paddlevideo.utils.config import AttrDict, load_yaml


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
        "import logging, os, sys; before = dict(os.environ); import paddlevideo, paddlevideo.utils; "
        "assert dict(os.environ) == before; assert not logging.getLogger('paddlevideo').handlers; "
        "assert 'paddle' not in sys.modules, 'paddle imported at package import'"
    )
    repo = __import__("pathlib").Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert logging.getLogger("paddlevideo") is not None


def test_save_config_round_trips(yaml_file, tmp_path):
    from paddlevideo.utils.config import save_config

    cfg = get_config(str(yaml_file), ["MODEL.backbone.depth=3"], show=False)
    again = get_config(str(save_config(cfg, tmp_path / "out" / "saved.yaml")), show=False)
    assert again == cfg and again.MODEL.backbone.depth == 3
    assert isinstance(again.MODEL.backbone.epsilon, float)
