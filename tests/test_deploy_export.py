"""Export (issue 7): parity of every exported form with the dygraph model, and clear export errors."""

import subprocess
import sys

import numpy as np
import paddle
import pytest

from paddlevideo.modeling.builder import build_model
from paddlevideo.modeling.weights import CheckpointError, load_checkpoint
from paddlevideo.deploy.export import ExportError, export_input_shape, export_model
from paddlevideo.deploy.backends.onnx_runtime import OnnxPredictor
from paddlevideo.deploy.backends.paddle_inference import PaddlePredictor
from paddlevideo.config import save_config

from conftest import K400_CONFIG, REPO

TOL = 1e-4


def save_random_weights(cfg, path, seed=7):
    """Random weights for ``cfg`` saved as a full checkpoint; temporal weights made non-zero so the
    temporal attention path matters in the comparison (a fresh model zeroes ``temporal_fc``)."""
    paddle.seed(seed)
    model = build_model(cfg.MODEL)
    state = model.state_dict()
    rng = np.random.RandomState(seed)
    for key, value in state.items():
        if "temporal_fc" in key or "time_embed" in key:
            state[key] = paddle.to_tensor(rng.normal(0, 0.05, value.shape).astype("float32"))
    paddle.save(state, str(path))
    return path


def dygraph_logits(cfg, weights, imgs):
    """The reference: the model as training/testing builds it (fused attention), in infer mode."""
    model = build_model(cfg.MODEL)
    load_checkpoint(model, str(weights))
    model.eval()
    with paddle.no_grad():
        return model([paddle.to_tensor(imgs)], mode="infer").numpy()


def test_exported_forms_match_dygraph(tiny_cfg, tmp_path):
    weights = save_random_weights(tiny_cfg, tmp_path / "tiny.pdparams")
    shape = export_input_shape(tiny_cfg)
    assert shape == [None, 3, 12, 32, 32]
    imgs = np.random.RandomState(0).uniform(-2, 2, [2] + shape[1:]).astype("float32")
    reference = dygraph_logits(tiny_cfg, weights, imgs)
    assert reference.shape == (2, 10)

    before = {name: getattr(paddle._C_ops, name) for name in ("matmul", "gelu", "multiply")}
    legacy = export_model(tiny_cfg, str(weights), str(tmp_path / "legacy"), fmt="pdmodel")
    pir = export_model(tiny_cfg, str(weights), str(tmp_path / "pir"), fmt="pir", onnx=True)
    assert legacy["model"].endswith("TimeSformer.pdmodel") and legacy["params"].endswith("TimeSformer.pdiparams")
    assert pir["model"].endswith("TimeSformer.json")
    assert pir["onnx"].endswith("TimeSformer.onnx")
    # The old-IR tracing shim is gone afterwards and dygraph works as before.
    assert all(getattr(paddle._C_ops, name) is fn for name, fn in before.items())
    assert paddle.in_dynamic_mode()
    x = paddle.ones([2, 3])
    np.testing.assert_allclose(paddle.matmul(x, x, transpose_y=True).numpy(), np.full([2, 2], 3.0))

    outputs = {
        "pdmodel (default CPU settings)": PaddlePredictor(legacy["model"], legacy["params"])(imgs),
        "pdmodel (no IR optim, no oneDNN)": PaddlePredictor(legacy["model"], ir_optim=False,
                                                            enable_mkldnn=False)(imgs),
        "pir json (default CPU settings)": PaddlePredictor(pir["model"], pir["params"])(imgs),
        "onnxruntime": OnnxPredictor(pir["onnx"])(imgs),
    }
    for name, logits in outputs.items():
        assert logits.shape == reference.shape, name
        diff = float(np.abs(logits - reference).max())
        assert diff <= TOL, f"{name}: max abs diff {diff}"
    # The batch is dynamic, and the graph averages the 3 views: each view alone (tiled to the 3-view
    # input shape, so its "average" is itself) averaged by numpy gives the same scores.
    predictor = PaddlePredictor(legacy["model"])
    views = [imgs[:1, :, 4 * v:4 * (v + 1)] for v in range(3)]
    per_view = [predictor(np.concatenate([view] * 3, axis=2)) for view in views]
    np.testing.assert_allclose(np.mean(per_view, axis=0), reference[:1], atol=TOL)


def test_export_errors_name_the_problem(tiny_cfg, tmp_path):
    weights = save_random_weights(tiny_cfg, tmp_path / "tiny.pdparams")
    with pytest.raises(ExportError, match="weights file '.*nope.pdparams' not found"):
        export_model(tiny_cfg, str(tmp_path / "nope.pdparams"), str(tmp_path / "out"))
    with pytest.raises(ExportError, match="no weights given"):
        export_model(tiny_cfg, None, str(tmp_path / "out"))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="output dir '.*a_file' is a file"):
        export_model(tiny_cfg, str(weights), str(blocker))
    with pytest.raises(ExportError, match="cannot be created"):
        export_model(tiny_cfg, str(weights), str(blocker / "sub"))
    with pytest.raises(ExportError, match="unknown export format 'onnx'"):
        export_model(tiny_cfg, str(weights), str(tmp_path / "out"), fmt="onnx")
    other = tiny_cfg.MODEL.copy()
    other["head"] = dict(tiny_cfg.MODEL.head, num_classes=7)
    paddle.save(build_model(other).state_dict(), str(tmp_path / "other.pdparams"))
    with pytest.raises(CheckpointError, match=r"head\.fc\.weight: checkpoint \[64, 7\] vs model \[64, 10\]"):
        export_model(tiny_cfg, str(tmp_path / "other.pdparams"), str(tmp_path / "out"))


def run_export_cli(*args):
    return subprocess.run([sys.executable, str(REPO / "tools" / "export_model.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def test_export_cli_writes_files_and_fails_in_one_line(tiny_cfg, tmp_path):
    config = save_config(tiny_cfg, tmp_path / "tiny.yaml")
    weights = save_random_weights(tiny_cfg, tmp_path / "tiny.pdparams")
    done = run_export_cli("-c", str(config), "-p", str(weights), "-o", str(tmp_path / "inf"), "--format", "pir")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "inf").iterdir()) == ["TimeSformer.json", "TimeSformer.pdiparams",
                                                                "TimeSformer.provenance.json"]

    missing = run_export_cli("-c", str(config), "-p", str(tmp_path / "missing.pdparams"), "-o", str(tmp_path / "x"))
    assert missing.returncode != 0
    errors = [line for line in missing.stderr.splitlines() if "error" in line]
    assert errors == [f"export_model.py: error: weights file '{tmp_path / 'missing.pdparams'}' not found; "
                      "pass the .pdparams written by training"]

    no_weights = run_export_cli("-c", str(config), "-o", str(tmp_path / "y"))
    assert no_weights.returncode != 0 and "-p WEIGHTS.pdparams is required" in no_weights.stderr


@pytest.mark.slow
def test_base_config_exports_and_runs_in_onnxruntime(tmp_path):
    """The full ViT-B K400 config (3 views of 8 x 224 x 224) exports (PIR + its ONNX conversion, one trace) and
    ONNX Runtime gives the dygraph model's scores."""
    from paddlevideo.config import get_config

    cfg = get_config(str(K400_CONFIG), ["MODEL.backbone.pretrained="], show=False)
    paddle.seed(0)
    model = build_model(cfg.MODEL)
    for name, tensor in model.state_dict().items():  # temporal_fc and the head start at zero: draw everything
        if not name.endswith(("norm.weight", "norm1.weight", "norm2.weight")):
            tensor.set_value(paddle.randn(tensor.shape, dtype=tensor.dtype) * 0.02)
    weights = tmp_path / "base.pdparams"
    paddle.save(model.state_dict(), str(weights))
    imgs = np.random.RandomState(0).uniform(-2, 2, [1, 3, 24, 224, 224]).astype("float32")
    model.eval()
    with paddle.no_grad():
        expected = model([paddle.to_tensor(imgs)], mode="infer").numpy()
    del model
    written = export_model(cfg, str(weights), str(tmp_path / "out"), fmt="pir", onnx=True)
    import onnxruntime as ort

    session = ort.InferenceSession(written["onnx"], providers=["CPUExecutionProvider"])
    declared = session.get_inputs()[0].shape
    assert declared[1:] == [3, 24, 224, 224]
    scores = session.run(None, {session.get_inputs()[0].name: imgs})[0]
    assert scores.shape == (1, 400)
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)
    assert np.ptp(expected) > 1e-3  # the comparison is not between two constant vectors
