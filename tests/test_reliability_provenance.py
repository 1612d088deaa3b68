"""Issue 26, class 1 (and the int8 cases of 2, 4 and 8): an exported model and every file derived from it carry
what they were made from, and a model that does not match is one line before any video is read.

The tools run in subprocesses (OpenVINO and NNCF must stay out of the test process, see test_deploy_openvino.py).
One tiny model is exported and quantized once per module; each test copies that folder and changes it the way a
user would (re-export other weights beside the int8 model, another frame count, a partial copy, ...).
"""

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys

import paddle
import pytest

from paddlevideo.deploy.errors import PredictError
from paddlevideo.deploy.export import export_model
from paddlevideo.deploy.predictor import checked_model_file
from paddlevideo.modeling.builder import build_model
from paddlevideo.utils import get_config
from paddlevideo.config import save_config

from conftest import K400_CONFIG, REPO, TINY_OVERRIDES
from engine_helpers import make_data

NAME = "TimeSformer"


def run_tool(tool, *args, timeout=300):
    return subprocess.run([sys.executable, str(REPO / tool), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def one_line_error(done, prog, *words):
    """Exit 1, the last stderr line is ``<prog>: error: ...`` naming ``words``, no traceback, no 'unexpected'."""
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{prog}: error: ") and "unexpected" not in line, done.stderr[-3000:]
    for word in words:
        assert word in line, (word, line)
    return line


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_config(root, data, *extra):
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES + list(extra), show=False)
    cfg.DATASET.test.data_prefix, cfg.DATASET.test.file_path = str(data), str(data / "val.list")
    return cfg


def random_weights(cfg, path, seed):
    paddle.seed(seed)
    paddle.save(build_model(cfg.MODEL).state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """``exp/TimeSformer.pdmodel`` (weights A) with ``TimeSformer.int8.xml`` quantized from it by the tool."""
    root = tmp_path_factory.mktemp("provenance")
    data = root / "data"
    make_data(data, num_train=2, num_val=4)
    cfg = tiny_config(root, data)
    config = save_config(cfg, root / "tiny.yaml")
    weights = random_weights(cfg, root / "a.pdparams", seed=1)
    export_model(cfg, str(weights), str(root / "exp"))
    done = run_tool("tools/quantize.py", "-c", config, "--model_file", root / "exp" / f"{NAME}.pdmodel",
                    "--calib_list", data / "val.list", "--num_clips", 2)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.fixture
def model_dir(quantized, tmp_path):
    """A fresh copy of the exported + quantized folder for one test to change."""
    folder = tmp_path / "exp"
    shutil.copytree(quantized / "exp", folder)
    return folder


def video(root):
    return root / "data" / "val" / "000000.avi"


def test_the_records_say_what_the_files_were_made_from(quantized):
    folder = quantized / "exp"
    export = json.loads((folder / f"{NAME}.provenance.json").read_text())
    assert export["kind"] == "export" and export["precision"] == "fp32"
    assert export["weights"]["sha256"] == "sha256:" + digest(quantized / "a.pdparams")
    assert export["files"] == {name: "sha256:" + digest(folder / name) for name in (f"{NAME}.pdmodel",
                                                                                    f"{NAME}.pdiparams")}
    assert export["model"]["input_shape"] == [None, 3, 12, 32, 32]
    assert export["model"]["MODEL.head.num_classes"] == 10 and export["model"]["MODEL.backbone.num_seg"] == 4
    int8 = json.loads((folder / f"{NAME}.int8.provenance.json").read_text())
    assert int8["precision"] == "int8" and int8["weights"] == export["weights"]
    assert int8["source"] == export["files"]  # the digests of the very .pdmodel / .pdiparams quantized
    assert int8["files"] == {name: "sha256:" + digest(folder / name) for name in (f"{NAME}.int8.xml",
                                                                                  f"{NAME}.int8.bin")}
    assert int8["calibration"]["clips"] == 2
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_int8_model_runs_and_main_logs_int8(quantized):
    config = quantized / "tiny.yaml"
    done = run_tool("tools/predict.py", "-i", video(quantized), "-c", config, "--backend", "openvino",
                    "--model_file", quantized / "exp" / f"{NAME}.pdmodel", "--precision", "int8")
    assert done.returncode == 0, done.stderr[-3000:]
    test = run_tool("main.py", "--test", "-c", config, "--model_file", quantized / "exp" / f"{NAME}.int8.xml",
                    "-o", f"output_dir={quantized / 'out'}", "--output_dir", quantized / "out")
    assert test.returncode == 0, test.stderr[-3000:]
    assert re.search(r"testing exported model \S+TimeSformer\.int8\.xml on openvino in int8", test.stdout + test.stderr)


def test_an_int8_model_is_never_quantized_again(quantized):
    int8 = quantized / "exp" / f"{NAME}.int8.xml"
    before = {p.name: digest(p) for p in (quantized / "exp").iterdir()}
    done = run_tool("tools/quantize.py", "-c", quantized / "tiny.yaml", "--model_file", int8, "--calib_list",
                    quantized / "data" / "val.list", "--num_clips", 2)
    one_line_error(done, "quantize.py", str(int8), "already an int8 model")
    assert "calibration" not in done.stderr  # refused before any work
    assert {p.name: digest(p) for p in (quantized / "exp").iterdir()} == before


def test_a_stale_int8_model_beside_a_re_export_is_refused(quantized, model_dir, tmp_path):
    cfg = tiny_config(tmp_path, quantized / "data")
    export_model(cfg, str(random_weights(cfg, tmp_path / "b.pdparams", seed=2)), str(model_dir))
    config = quantized / "tiny.yaml"
    done = run_tool("tools/predict.py", "-i", video(quantized), "-c", config, "--backend", "openvino",
                    "--model_file", model_dir / f"{NAME}.pdmodel", "--precision", "int8")
    one_line_error(done, "predict.py", f"{NAME}.int8.xml", "is stale", "tools/quantize.py")
    test = run_tool("main.py", "--test", "-c", config, "--model_file", model_dir / f"{NAME}.pdmodel",
                    "--precision", "int8", "--output_dir", tmp_path / "out")
    one_line_error(test, "main.py", "is stale")
    fp32 = run_tool("tools/predict.py", "-i", video(quantized), "-c", config, "--model_file",
                    model_dir / f"{NAME}.pdmodel")
    assert fp32.returncode == 0, fp32.stderr[-2000:]  # the new export itself is fine


# The checks themselves run in the test process (checked_model_file reads the files; it loads no runtime), as
# predict.py and main.py --test call them before any video; the tools' one-line form is checked above.

def test_an_int8_model_of_another_frame_count_is_refused(quantized, model_dir, tmp_path):
    cfg = tiny_config(tmp_path, quantized / "data", "MODEL.backbone.num_seg=2")
    export_model(cfg, str(random_weights(cfg, tmp_path / "c.pdparams", seed=3)), str(model_dir))
    with pytest.raises(PredictError, match=r"TimeSformer\.int8\.xml' takes clips of shape \[N, 3, 12, 32, 32\] but "
                                           r"the config's test pipeline makes \[N, 3, 6, 32, 32\]"):
        checked_model_file(str(model_dir / f"{NAME}.pdmodel"), cfg, "openvino", "int8")


def test_a_file_replaced_after_the_export_or_left_from_an_earlier_one(quantized, model_dir, tmp_path):
    cfg = tiny_config(tmp_path, quantized / "data")
    other = export_model(cfg, str(random_weights(cfg, tmp_path / "d.pdparams", seed=4)), str(tmp_path / "other"),
                         onnx=True, fmt="pir")
    assert checked_model_file(str(model_dir / f"{NAME}.pdmodel"), cfg, "paddle", "fp32")[1] == "fp32"
    shutil.copy(other["params"], model_dir / f"{NAME}.pdiparams")  # a half-copied folder: new weights, old record
    with pytest.raises(PredictError, match=r"TimeSformer\.pdiparams' is not the file recorded in '.*TimeSformer"
                                           r"\.provenance\.json'"):
        checked_model_file(str(model_dir / f"{NAME}.pdmodel"), cfg, "paddle", "fp32")
    # an .onnx of an earlier export beside a newer export made without --onnx
    shutil.copy(other["onnx"], model_dir / f"{NAME}.onnx")
    with pytest.raises(PredictError, match=r"TimeSformer\.onnx' is not part of the model recorded"):
        checked_model_file(str(model_dir / f"{NAME}.onnx"), cfg, "onnxruntime", "fp32")


def test_a_config_of_another_shape_is_named(quantized, tmp_path):
    cfg = tiny_config(tmp_path, quantized / "data", "MODEL.head.num_classes=7")
    with pytest.raises(PredictError, match=r"was made with MODEL\.head\.num_classes=10 but the config gives 7"):
        checked_model_file(str(quantized / "exp" / f"{NAME}.pdmodel"), cfg, "paddle", "fp32")


def test_models_without_a_record_still_work(quantized, model_dir, tmp_path, caplog):
    """PaddleVideo's exports have no record; an int8 model without one is used with a warning."""
    (model_dir / f"{NAME}.provenance.json").unlink()
    (model_dir / f"{NAME}.int8.provenance.json").unlink()
    cfg = tiny_config(tmp_path, quantized / "data")
    logger = logging.getLogger("paddlevideo")
    logger.addHandler(caplog.handler)
    try:
        assert checked_model_file(str(model_dir / f"{NAME}.pdmodel"), cfg, "paddle", "fp32")[1] == "fp32"
        assert not caplog.records
        run_file, precision = checked_model_file(str(model_dir / f"{NAME}.pdmodel"), cfg, "openvino", "int8")
    finally:
        logger.removeHandler(caplog.handler)
    assert run_file.endswith(f"{NAME}.int8.xml") and precision == "int8"
    assert "has no provenance record" in caplog.text
    # without a record the FakeQuantize operations still tell an int8 model, whatever its name
    (model_dir / f"{NAME}.int8.xml").rename(model_dir / "renamed.xml")
    assert checked_model_file(str(model_dir / "renamed.xml"), cfg, "openvino", "fp32")[1] == "int8"


def test_quantize_checks_its_output_before_the_calibration(quantized, tmp_path):
    config, model = quantized / "tiny.yaml", quantized / "exp" / f"{NAME}.pdmodel"
    calib = quantized / "data" / "val.list"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = run_tool("tools/quantize.py", "-c", config, "--model_file", model, "--calib_list", calib,
                    "--output", blocker / "q.xml")
    one_line_error(done, "quantize.py", str(blocker))
    assert "calibration" not in done.stderr  # failed before the calibration started
    done = run_tool("tools/quantize.py", "-c", config, "--model_file", model, "--calib_list", calib,
                    "--output", model.with_suffix(".xml"))
    one_line_error(done, "quantize.py", "--output", f"{NAME}.provenance.json")  # the export's record is an input
    done = run_tool("tools/quantize.py", "-c", config, "--model_file", model, "--calib_list", calib,
                    "--output", tmp_path / "new" / "deeper" / "q.xml", "--num_clips", 1)
    assert done.returncode == 0, done.stderr[-2000:]  # a folder that does not exist yet is created
    assert sorted(p.name for p in (tmp_path / "new" / "deeper").iterdir()) == ["q.bin", "q.provenance.json", "q.xml"]
    record = json.loads((tmp_path / "new" / "deeper" / "q.provenance.json").read_text())
    assert record["precision"] == "int8" and record["source"][f"{NAME}.pdmodel"] == "sha256:" + digest(model)
