"""An exported model's input shape is read from each file format and checked against the config's test pipeline
before the first video: a mismatch is one line naming both shapes (predict.py and main.py --test --model_file)."""

import subprocess
import sys

import pytest

from conftest import REPO
from paddlevideo.deploy.export import export_input_shape, export_model
from paddlevideo.deploy.model_input import check_model_input, declared_input_shape, pipeline_input_shape
from paddlevideo.deploy.errors import PredictError
from paddlevideo.config import get_config, save_config
from test_deploy_export import save_random_weights


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The tiny model exported as .pdmodel, PIR .json + .onnx, and OpenVINO .xml (converted in a subprocess:
    OpenVINO stays out of the test process), with its config and the shape the export was made for."""
    from conftest import K400_CONFIG, TINY_OVERRIDES

    tmp = tmp_path_factory.mktemp("model_input")
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    weights = save_random_weights(cfg, tmp / "tiny.pdparams")
    legacy = export_model(cfg, str(weights), str(tmp / "legacy"), fmt="pdmodel")
    pir = export_model(cfg, str(weights), str(tmp / "pir"), fmt="pir", onnx=True)
    xml = tmp / "tiny.xml"
    subprocess.run([sys.executable, "-c", "import openvino as ov, sys; ov.save_model(ov.Core().read_model(sys.argv[1]), "
                    "sys.argv[2])", legacy["model"], str(xml)], check=True, timeout=300, capture_output=True)
    return {"cfg": cfg, "config": save_config(cfg, tmp / "tiny.yaml"), "shape": export_input_shape(cfg),
            "files": {"pdmodel": legacy["model"], "json": pir["model"], "onnx": pir["onnx"], "xml": str(xml)}}


@pytest.mark.parametrize("fmt", ["pdmodel", "json", "onnx", "xml"])
def test_every_format_declares_the_shape_it_was_exported_for(exports, fmt):
    assert declared_input_shape(exports["files"][fmt]) == exports["shape"]  # [None, 3, T*3, S, S]


def test_the_pipeline_makes_the_exported_shape_and_a_match_passes(exports):
    assert pipeline_input_shape(exports["cfg"]) == exports["shape"]
    for path in exports["files"].values():
        check_model_input(path, exports["cfg"])


@pytest.mark.parametrize("override, made", [("MODEL.backbone.num_seg={half}", "3, {half3}, {size}, {size}"),
                                            ("MODEL.backbone.img_size={double}", "3, {frames}, {double}, {double}")])
def test_a_config_of_other_frames_or_size_is_refused_naming_both_shapes(exports, override, made):
    _, _, frames, size, _ = exports["shape"]
    values = {"half": frames // 6, "half3": frames // 2, "double": size * 2, "frames": frames, "size": size}
    cfg = get_config(exports["config"], [override.format(**values)], show=False)
    for path in exports["files"].values():
        with pytest.raises(PredictError) as info:
            check_model_input(path, cfg)
        message = str(info.value)
        assert f"[N, 3, {frames}, {size}, {size}]" in message and f"[N, {made.format(**values)}]" in message
        assert path in message and "\n" not in message


def test_predict_and_test_refuse_before_reading_a_video(exports, tmp_path):
    half = exports["shape"][2] // 6
    common = ["-c", exports["config"], "-o", f"MODEL.backbone.num_seg={half}"]
    runs = {
        "predict.py": [str(REPO / "tools" / "predict.py"), "-i", str(tmp_path / "absent_but_unread.avi"),
                       "--model_file", exports["files"]["pdmodel"], *common],
        "main.py": [str(REPO / "main.py"), "--test", "--model_file", exports["files"]["pdmodel"], *common,
                    f"output_dir={tmp_path / 'out'}"],
    }
    (tmp_path / "absent_but_unread.avi").write_bytes(b"")
    for prog, args in runs.items():
        proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert last.startswith(f"{prog}: error: model ") and "takes clips of shape" in last, last
