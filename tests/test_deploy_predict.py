"""tools/predict.py (issue 7): output format, same top-1 on every backend, bad inputs."""

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from paddlevideo.loader.builder import build_pipeline
from paddlevideo.deploy.export import export_model
from paddlevideo.config import save_config
from paddlevideo.deploy.backends.onnx_runtime import OnnxPredictor
from paddlevideo.deploy.backends.paddle_inference import PaddlePredictor
from paddlevideo.deploy.errors import PredictError
from paddlevideo.loader.labels import config_label_file, load_label_names
from paddlevideo.deploy.predict import format_text, softmax, top_k
from paddlevideo.loader.video_files import list_videos

from conftest import REPO
from test_deploy_export import dygraph_logits, save_random_weights

TEXT_LINES = [r"Current video file: (?P<file>.+)", r"\ttop-1 class: (?P<cls>\d+)",
              r"\ttop-1 score: (?P<score>[0-9.e-]+)"]


def run_predict(*args):
    return subprocess.run([sys.executable, str(REPO / "tools" / "predict.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def parse_text(stdout):
    """The three PaddleVideo lines (+ optional class name) of each video; fails on any other line."""
    lines, videos = stdout.splitlines(), []
    while lines:
        block = [re.fullmatch(pattern, line) for pattern, line in zip(TEXT_LINES, lines[:3])]
        assert len(block) == 3 and all(block), f"not the 3-line format: {lines[:3]}"
        video = {"file": block[0]["file"], "cls": int(block[1]["cls"]), "score": float(block[2]["score"])}
        lines = lines[3:]
        if lines and lines[0].startswith("\ttop-1 class name: "):
            video["name"] = lines.pop(0)[len("\ttop-1 class name: "):]
        videos.append(video)
    return videos


@pytest.fixture
def legacy_export(tiny_cfg, tmp_path):
    """The tiny model with random weights exported as .pdmodel only, and its config file."""
    weights = save_random_weights(tiny_cfg, tmp_path / "tiny.pdparams")
    legacy = export_model(tiny_cfg, str(weights), str(tmp_path / "legacy"), fmt="pdmodel")
    return {"config": save_config(tiny_cfg, tmp_path / "tiny.yaml"), "pdmodel": legacy["model"],
            "pdiparams": legacy["params"]}


@pytest.fixture
def exported(tiny_cfg, tmp_path):
    """The tiny model with random weights, exported as .pdmodel, PIR .json and .onnx, and its config file."""
    weights = save_random_weights(tiny_cfg, tmp_path / "tiny.pdparams")
    legacy = export_model(tiny_cfg, str(weights), str(tmp_path / "legacy"), fmt="pdmodel")
    pir = export_model(tiny_cfg, str(weights), str(tmp_path / "pir"), fmt="pir", onnx=True)
    return {"config": save_config(tiny_cfg, tmp_path / "tiny.yaml"), "weights": weights,
            "pdmodel": legacy["model"], "pdiparams": legacy["params"], "json": pir["model"], "onnx": pir["onnx"]}


def test_every_backend_prints_the_dygraph_top1(tiny_cfg, exported, example_avi, shared_dir):
    # Independent expectation: the dygraph model on the test pipeline's clip, softmax in numpy.
    clip = build_pipeline(tiny_cfg.PIPELINE.test, "test")({"filename": str(example_avi)})["imgs"]
    logits = dygraph_logits(tiny_cfg, exported["weights"], clip[None])[0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    expected = int(np.argmax(probs))
    # the first 10 Kinetics-400 names: the list must match the tiny model's 10 classes (loader/labels.py)
    k400 = shared_dir / "data" / "k400" / "Kinetics-400_label_list.txt"
    label_file = Path(exported["weights"]).parent / "labels10.txt"
    label_file.write_text("\n".join(k400.read_text().splitlines()[:10]) + "\n")
    names = dict(line.split(" ", 1) for line in label_file.read_text().splitlines())

    plain = run_predict("--input_file", example_avi, "--config", exported["config"],
                        "--model_file", exported["pdmodel"], "--params_file", exported["pdiparams"])
    assert plain.returncode == 0, plain.stderr
    assert len(plain.stdout.splitlines()) == 3  # no label list known: exactly the three lines
    (video,) = parse_text(plain.stdout)
    assert video["file"] == str(example_avi) and video["cls"] == expected
    assert abs(video["score"] - probs[expected]) <= 1e-4

    pir = run_predict("--input_file", example_avi, "--config", exported["config"], "--model_file", exported["json"],
                      "--label_file", label_file)
    assert pir.returncode == 0, pir.stderr
    (video,) = parse_text(pir.stdout)
    assert video["cls"] == expected and video["name"] == names[str(expected)]

    onnx = run_predict("--input_file", example_avi, "--config", exported["config"], "--backend", "onnxruntime",
                       "--onnx_file", exported["onnx"], "--output", "json", "--top_k", "3",
                       "--label_file", label_file)
    assert onnx.returncode == 0, onnx.stderr
    (line,) = onnx.stdout.splitlines()
    result = json.loads(line)
    assert result["file"] == str(example_avi)
    assert result["class_ids"][0] == expected and len(result["class_ids"]) == 3
    assert result["class_names"] == [names[str(i)] for i in result["class_ids"]]
    assert result["scores"] == sorted(result["scores"], reverse=True) and sum(result["scores"]) <= 1 + 1e-6
    np.testing.assert_allclose(result["scores"], np.sort(probs)[::-1][:3], atol=1e-4)


def write_video(path, frames=24, size=(64, 48), seed=0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    rng = np.random.RandomState(seed)
    for _ in range(frames):
        writer.write(rng.randint(0, 255, (size[1], size[0], 3), np.uint8))
    writer.release()
    return path


def test_folder_with_bad_videos_predicts_the_rest(legacy_export, tmp_path, h264_mp4):
    exported = legacy_export
    folder = tmp_path / "videos"
    folder.mkdir()
    good = write_video(folder / "good.avi")
    (folder / "notes.mp4").write_text("this is a text file, not a video\n")
    data = h264_mp4.read_bytes()
    (folder / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: unreadable
    (folder / "readme.txt").write_text("not listed: wrong extension")

    done = run_predict("--input_file", folder, "--config", exported["config"], "--model_file", exported["pdmodel"],
                       "--use_gpu=True", "--batch_size", "2")
    assert done.returncode != 0
    videos = parse_text(done.stdout)
    assert [v["file"] for v in videos] == [str(good)]
    errors = [line for line in done.stderr.splitlines() if line.startswith("predict.py: error: ")]
    per_file = [line for line in errors if "could not be predicted" not in line]
    assert len(per_file) == 2, done.stderr
    assert any(str(folder / "notes.mp4") in line for line in per_file)
    assert any(str(folder / "cut.mp4") in line for line in per_file)
    assert "predict.py: error: 2 of 3 video(s) could not be predicted" in errors
    assert "no usable GPU; running on CPU" in done.stderr  # --use_gpu=True on a CPU-only build


def test_missing_input_and_unreadable_models_are_one_line_errors(legacy_export, tmp_path):
    exported = legacy_export
    missing = run_predict("--input_file", tmp_path / "nowhere.avi", "--config", exported["config"],
                          "--model_file", exported["pdmodel"])
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines()[-1] == (
        f"predict.py: error: --input_file '{tmp_path / 'nowhere.avi'}' not found; pass a video file or a folder of videos")

    garbage = tmp_path / "broken.pdmodel"
    garbage.write_bytes(np.random.RandomState(0).bytes(2000))
    (tmp_path / "broken.pdiparams").write_bytes(b"")
    with pytest.raises(PredictError, match=r"model file '.*broken\.pdmodel' is not a Paddle program"):
        PaddlePredictor(str(garbage))
    cut = tmp_path / "cut.pdmodel"
    cut.write_bytes(open(exported["pdmodel"], "rb").read()[:300])
    (tmp_path / "cut.pdiparams").write_bytes(open(exported["pdiparams"], "rb").read())
    with pytest.raises(PredictError, match=r"model file '.*cut\.pdmodel'"):
        PaddlePredictor(str(cut))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{ not json")
    with pytest.raises(PredictError, match=r"model file '.*bad\.json' is not a Paddle PIR program"):
        PaddlePredictor(str(bad_json), exported["pdiparams"])
    short_params = tmp_path / "short.pdiparams"
    short_params.write_bytes(open(exported["pdiparams"], "rb").read()[:1000])
    with pytest.raises(PredictError, match=r"cannot load model '.*TimeSformer\.pdmodel' with params '.*short"):
        PaddlePredictor(exported["pdmodel"], str(short_params))
    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(b"\x00garbage")
    with pytest.raises(PredictError, match=r"cannot load ONNX model '.*bad\.onnx'"):
        OnnxPredictor(str(bad_onnx))
    with pytest.raises(PredictError, match=r"params file '.*nothere\.pdiparams' not found"):
        PaddlePredictor(exported["pdmodel"], str(tmp_path / "nothere.pdiparams"))


def test_cpu_inference_settings_build_and_agree(exported):
    # Every CPU combination predict.py can be asked for builds a predictor and gives the same logits.
    imgs = np.random.RandomState(2).uniform(-1, 1, [1, 3, 12, 32, 32]).astype("float32")
    base = PaddlePredictor(exported["pdmodel"], ir_optim=False, enable_mkldnn=False)(imgs)
    for model in ("pdmodel", "json"):
        for ir_optim in (True, False):
            for onednn in (True, False):
                out = PaddlePredictor(exported[model], exported["pdiparams"] if model == "pdmodel" else None,
                                      ir_optim=ir_optim, enable_mkldnn=onednn, cpu_threads=1)(imgs)
                assert np.abs(out - base).max() <= 1e-4, (model, ir_optim, onednn)


def test_help_explains_every_flag():
    done = subprocess.run([sys.executable, str(REPO / "tools" / "predict.py"), "--help"], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0
    flags = ["--input_file", "--config", "--model_file", "--params_file", "--batch_size", "--use_gpu",
             "--use_tensorrt", "--precision", "--enable_mkldnn", "--cpu_threads", "--ir_optim", "--gpu_mem",
             "--enable_benchmark", "--disable_glog", "--top_k", "--label_file", "--backend", "--onnx_file",
             "--output"]
    text = " ".join(done.stdout.split())
    for flag in flags:
        # each flag is followed by its own help text (not just listed in the usage line)
        assert re.search(re.escape(flag) + r"( [A-Z_{},a-z0-9|]+)? [A-Za-z(]", text.split("options:", 1)[-1]), flag


def test_str2bool_accepts_paddlevideo_spellings():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import predict as tool
    finally:
        sys.path.pop(0)
    args = tool.parse_args(["-i", "x.avi", "-c", "c.yaml", "--model_file", "m.pdmodel", "--use_gpu=True",
                            "--enable_mkldnn", "false", "--ir_optim=0"])
    assert args.use_gpu is True and args.enable_mkldnn is False and args.ir_optim is False
    defaults = tool.parse_args(["-i", "x.avi", "-c", "c.yaml", "--model_file", "m.pdmodel"])
    assert defaults.enable_mkldnn and defaults.ir_optim and not defaults.use_gpu  # the CPU fast path by default
    with pytest.raises(SystemExit):
        tool.parse_args(["-i", "x.avi", "-c", "c.yaml", "--model_file", "m.pdmodel", "--use_gpu=maybe"])
    with pytest.raises(SystemExit):
        tool.parse_args(["-i", "x.avi", "-c", "c.yaml", "--backend", "onnxruntime"])  # no --onnx_file


def test_softmax_topk_and_text_format():
    logits = np.array([[1.0, 3.0, 2.0, 3.0]], np.float32)
    naive = [np.exp(v) / sum(np.exp(w) for w in logits[0]) for v in logits[0]]
    np.testing.assert_allclose(softmax(logits)[0], naive, rtol=1e-6)
    ids, scores = top_k(softmax(logits)[0], 3)
    assert ids == [1, 3, 2] and scores[0] == pytest.approx(naive[1])  # ties keep the lower id first
    assert top_k(softmax(logits)[0], 99)[0] == [1, 3, 2, 0]
    text = format_text({"file": "data/example.avi", "class_ids": [5], "class_names": None, "scores": [0.5]})
    assert text == "Current video file: data/example.avi\n\ttop-1 class: 5\n\ttop-1 score: 0.5"
    named = format_text({"file": "a.avi", "class_ids": [5, 2], "class_names": ["archery", "x"], "scores": [0.5, 0.25]})
    assert named.splitlines()[1:] == ["\ttop-2 class: [5, 2]", "\ttop-2 score: [0.5, 0.25]",
                                      "\ttop-2 class name: ['archery', 'x']"]


def test_label_list_and_video_listing(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("0 abseiling\n1 air_drumming\n\n2 archery\n")
    assert load_label_names(str(labels)) == {0: "abseiling", 1: "air_drumming", 2: "archery"}
    with pytest.raises(PredictError, match="label file '.*none.txt' .* not found"):
        load_label_names(str(tmp_path / "none.txt"))
    assert config_label_file({"INFERENCE": {"label_file": "a.txt"}, "label_file": "b.txt"}) == (
        "a.txt", "INFERENCE.label_file")
    assert config_label_file({"DATASET": {"label_file": "c.txt"}}) == ("c.txt", "DATASET.label_file")
    assert config_label_file({"INFERENCE": {"num_seg": 8}}) is None
    for name in ("b.MP4", "a.avi", "c.webm", "skip.txt", "d.mov", "e.mkv"):
        (tmp_path / name).write_text("")
    assert [p.rsplit("/", 1)[1] for p in list_videos(str(tmp_path))] == ["a.avi", "b.MP4", "c.webm", "d.mov", "e.mkv"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictError, match="has no video"):
        list_videos(str(tmp_path / "empty"))


def test_paddle_is_still_dynamic_after_tests():
    assert paddle.in_dynamic_mode()
