"""Issue 15: OpenVINO fp32 / bf16 / int8 deployment, int8 calibration through the test pipeline, bad inputs.

OpenVINO and NNCF run only in subprocesses (the tools as users call them): loaded into the pytest process
they break later tests that fork or spawn (Paddle's loader workers, paddle.distributed).

The model: the tiny TimeSformer with a random backbone and a head built as a nearest-template classifier on
the fp32 CLS features of the ten demo val clips (class i = clip i), so every clip has its own top-1 with a
clear margin: a precision that changes any top-1 changed the model's function, not a coin flip.
"""

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import paddle
import pytest

from paddlevideo.loader.builder import build_pipeline
from paddlevideo.modeling.builder import build_model
from paddlevideo.deploy.export import export_model
from paddlevideo.deploy.errors import PredictError
from paddlevideo.deploy.predictor import resolve_cpu_precision
from paddlevideo.config import get_config, save_config
from paddlevideo.common.cpu_features import cpu_flags, has_bf16, isa_level, isa_summary

from conftest import K400_CONFIG, REPO, TINY_OVERRIDES
from engine_helpers import make_data

NUM_CLIPS = 10  # the tiny model's class count: one class per clip
HEAD_SCALE = 20.0  # logit gap between a clip's own template and the next: ~20 * (1 - 0.8) * |centred feature|


def run_tool(tool, *args, timeout=300):
    return subprocess.run([sys.executable, str(REPO / tool), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def last_error(done, prog):
    """The single ``<prog>: error: ...`` line a failed run ends with (no traceback)."""
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{prog}: error: "), done.stderr[-2000:]
    return line


@pytest.fixture(scope="module")
def template_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("openvino")
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    data = root / "data"
    make_data(data, num_train=2, num_val=NUM_CLIPS)
    pipeline = build_pipeline(cfg.PIPELINE.test, "test")
    files = [data / line.split()[0] for line in (data / "val.list").read_text().splitlines()]
    clips = np.stack([pipeline({"filename": str(f)})["imgs"] for f in files])

    paddle.seed(3)
    model = build_model(cfg.MODEL)
    model.eval()
    with paddle.no_grad():
        features = model.extract_feature(paddle.to_tensor(clips)).numpy().astype(np.float64)
    centred = features - features.mean(0)
    templates = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    state = model.state_dict()
    state["head.fc.weight"] = paddle.to_tensor((HEAD_SCALE * templates.T).astype("float32"))  # [D, classes]
    state["head.fc.bias"] = paddle.to_tensor((-HEAD_SCALE * templates @ features.mean(0)).astype("float32"))
    weights = root / "template.pdparams"
    paddle.save(state, str(weights))
    model.set_state_dict(state)
    with paddle.no_grad():
        logits = model([paddle.to_tensor(clips)], mode="infer").numpy()
    legacy = export_model(cfg, str(weights), str(root / "legacy"), fmt="pdmodel")
    pir = export_model(cfg, str(weights), str(root / "pir"), fmt="pir", onnx=True)
    cfg.DATASET.test.data_prefix, cfg.DATASET.test.file_path = str(data), str(data / "val.list")
    return SimpleNamespace(root=root, config=save_config(cfg, root / "tiny.yaml"), data=data, files=files,
                           logits=logits, pdmodel=legacy["model"], json=pir["model"], onnx=pir["onnx"])


def predicted_top1(done):
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]
    return {r["file"]: r["class_ids"][0] for r in results}


def test_every_backend_and_precision_gives_the_fp32_top1(template_model):
    m = template_model
    expected = np.argmax(m.logits, axis=1)
    assert list(expected) == list(range(NUM_CLIPS))  # the head tells every clip apart (the test can fail)
    want = {str(f): int(c) for f, c in zip(m.files, expected)}

    # Calibration list: the val list with a broken clip on line 2; 6 clips asked for.
    broken = m.data / "val" / "broken.avi"
    broken.write_text("not a video\n")
    lines = (m.data / "val.list").read_text().splitlines()
    calib = m.root / "calib.list"
    calib.write_text("\n".join(lines[:1] + ["val/broken.avi 0"] + lines[1:]) + "\n")
    quant = run_tool("tools/quantize.py", "-c", m.config, "--model_file", m.pdmodel, "--calib_list", calib,
                     "--num_clips", 6)
    assert quant.returncode == 0, quant.stderr[-3000:]
    int8 = m.pdmodel[: -len(".pdmodel")] + ".int8.xml"
    assert quant.stdout.splitlines()[-2:] == [f"int8 model: {int8}", "calibration clips: 6 used, 1 skipped"]
    output = quant.stdout + quant.stderr  # log lines go where the project's logger sends them
    assert re.search(r"1 calibration clip\(s\) could not be read and were skipped: .*broken\.avi", output)
    assert "calibration" in quant.stderr and "%" in quant.stderr  # the progress bar

    folder = m.data / "val"
    broken.unlink()
    # Paddle Inference and ONNX Runtime fp32 are checked against the dygraph model in test_deploy_predict.py.
    runs = {
        "openvino fp32 (.pdmodel)": ["--backend", "openvino", "--model_file", m.pdmodel, "--batch_size", 4],
        "openvino fp32 (PIR .json)": ["--backend", "openvino", "--model_file", m.json, "--cpu_threads", 1],
        "openvino bf16 (as fp16)": ["--backend", "openvino", "--model_file", m.onnx, "--precision", "fp16"],
        "openvino int8": ["--backend", "openvino", "--model_file", m.pdmodel, "--precision", "int8"],
    }
    for name, args in runs.items():
        done = run_tool("tools/predict.py", "--input_file", folder, "--config", m.config, "--output", "json", *args)
        assert predicted_top1(done) == want, name
        if "fp16" in args:
            note = "this CPU has no bf16" if not has_bf16() else "--precision fp16 on a CPU means bf16"
            assert note in done.stderr, done.stderr[-2000:]

    # The exported int8 model scored by main.py --test: the same metric line as weight-based --test, with the
    # top-1 counted here from the fp32 predictions and the list's labels.
    labels = np.array([int(line.split()[1]) for line in lines])
    test = run_tool("main.py", "--test", "-c", m.config, "--model_file", m.pdmodel, "--precision", "int8",
                    "-o", f"output_dir={m.root / 'test_out'}")
    assert test.returncode == 0, test.stderr[-3000:]
    line = re.search(r"\[TEST\] finished: (\d+) clips scored, (\d+) skipped .* top1: ([0-9.]+)",
                     test.stdout + test.stderr)
    assert line and int(line[1]) == NUM_CLIPS and int(line[2]) == 0
    assert float(line[3]) == pytest.approx(float(np.mean(expected == labels)), abs=1e-4)


def test_bad_inputs_are_one_line_errors(template_model, tmp_path):
    m = template_model
    empty = tmp_path / "empty.list"
    empty.write_text("")
    line = last_error(run_tool("tools/quantize.py", "-c", m.config, "--model_file", m.pdmodel, "--calib_list", empty),
                      "quantize.py")
    assert "empty.list" in line

    (tmp_path / "bad.avi").write_text("not a video")
    unreadable = tmp_path / "unreadable.list"
    unreadable.write_text("bad.avi 0\n")
    line = last_error(run_tool("tools/quantize.py", "-c", m.config, "--model_file", m.pdmodel, "--calib_list",
                               unreadable, "--data_prefix", tmp_path), "quantize.py")
    assert "no clip listed in" in line and "unreadable.list" in line

    wrong = tmp_path / "model.pdmodel"
    wrong.write_text("not a model")
    line = last_error(run_tool("tools/quantize.py", "-c", m.config, "--model_file", wrong, "--calib_list",
                               m.data / "val.list"), "quantize.py")
    assert "model.pdmodel" in line

    video = m.files[0]
    line = last_error(run_tool("tools/predict.py", "-i", video, "-c", m.config, "--backend", "onnxruntime",
                               "--onnx_file", m.onnx, "--precision", "int8"), "predict.py")
    assert "--backend onnxruntime has no int8" in line
    line = last_error(run_tool("tools/predict.py", "-i", video, "-c", m.config, "--backend", "openvino",
                               "--model_file", m.onnx, "--precision", "int8"), "predict.py")
    assert f"no int8 model '{m.onnx[:-len('.onnx')]}.int8.xml'" in line and "tools/quantize.py" in line


def test_bf16_needs_the_hardware_and_fp16_means_bf16():
    avx512 = {"avx2", "fma", "avx512f", "avx512_vnni"}
    assert isa_level(avx512) == "avx512" and isa_level({"avx2", "fma"}) == "avx2"
    assert isa_level(avx512 | {"avx512_bf16"}) == "avx512_bf16"
    assert isa_level(avx512 | {"avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}) == "amx"
    assert not has_bf16(avx512, ["BF16", "FP32"])  # flags win over a runtime that emulates bf16
    assert has_bf16(avx512 | {"amx_bf16"}) and has_bf16(set(), ["FP32", "BF16"]) and not has_bf16(set(), ["FP32"])

    precision, note = resolve_cpu_precision("openvino", "bf16", flags=avx512)
    assert precision == "fp32" and "this CPU has no bf16" in note
    assert resolve_cpu_precision("openvino", "fp16", flags=avx512 | {"avx512_bf16"}) == (
        "bf16", "--precision fp16 on a CPU means bf16 (as in PaddleVideo)")
    assert resolve_cpu_precision("openvino", "int8", flags=avx512) == ("int8", None)
    assert resolve_cpu_precision("paddle", "fp32") == ("fp32", None)
    with pytest.raises(PredictError, match="--backend paddle cannot run bf16"):
        resolve_cpu_precision("paddle", "fp16", flags=avx512 | {"avx512_bf16"})
    with pytest.raises(PredictError, match="--backend onnxruntime has no bf16"):
        resolve_cpu_precision("onnxruntime", "bf16", flags=avx512 | {"avx512_bf16"})

    flags = cpu_flags()  # this machine: the header line names its level
    assert isa_summary(flags).startswith(f"ISA: {isa_level(flags)} (")


def test_openvino_and_nncf_stay_out_of_the_test_process():
    # Loaded here they crash later tests that fork (see the module docstring); the library imports them lazily.
    import paddlevideo.deploy.predictor  # noqa: F401
    import paddlevideo.deploy.backends.openvino_runtime  # noqa: F401
    import paddlevideo.deploy.quantize  # noqa: F401

    assert "openvino" not in sys.modules and "nncf" not in sys.modules
