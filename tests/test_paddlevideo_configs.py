"""PaddleVideo's own TimeSformer-family configs, unchanged (tests/data/paddlevideo_configs/, flat as PaddleVideo
writes them), through every command a PaddleVideo user runs: train two steps, test, export (with --save_name, as
PaddleVideo's test chain does), predict. Only the model size and the data are overridden (``-o``), so the run is
seconds: a tiny ViT on generated 32 px clips."""

import re
import subprocess
import sys

import pytest

from conftest import REPO
from engine_helpers import make_data

CONFIGS = REPO / "tests" / "data" / "paddlevideo_configs"
TINY_MODEL = ["MODEL.backbone.pretrained=", "MODEL.backbone.img_size=32", "MODEL.backbone.patch_size=8",
              "MODEL.backbone.embed_dim=64", "MODEL.backbone.depth=2", "MODEL.backbone.num_heads=4",
              "MODEL.head.in_channels=64", "INFERENCE.target_size=32", "DATASET.num_workers=0"]
# the crops and scales PaddleVideo's files state for 224 px, at 32 px (positions as in those files)
TINY_CLIPS = ["PIPELINE.train.transform.2.JitterScale={min_size: 32, max_size: 40}",
              "PIPELINE.train.transform.3.RandomCrop={target_size: 32}",
              "PIPELINE.test.transform.2.JitterScale={min_size: 32, max_size: 32}",
              "PIPELINE.test.transform.3.UniformCrop={target_size: 32}"]
VALID_CLIPS = {"pptimesformer_k400_videos": ["PIPELINE.valid.transform.2.JitterScale={min_size: 32, max_size: 32}",
                                             "PIPELINE.valid.transform.3.CenterCrop={target_size: 32}"]}
VALID_CLIPS["timesformer_k400_videos"] = VALID_CLIPS["timesformer_ucf101_videos_xpu"] = [
    "PIPELINE.valid.transform.2.JitterScale={min_size: 32, max_size: 40}",
    "PIPELINE.valid.transform.3.RandomCrop={target_size: 32}"]
MODEL_NAME = {"timesformer_k400_videos": "TimeSformer", "timesformer_ucf101_videos_xpu": "TimeSformer",
              "pptimesformer_k400_videos": "ppTimeSformer"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The demo clips (4 classes, 8 frames, 32 px) with two lists each: as listed (``*.list``, data_prefix set) and
    without extensions and with full paths (``*_videos.txt``, for the UCF-101 config's ``suffix: '.avi'``)."""
    folder = tmp_path_factory.mktemp("clips")
    make_data(folder, num_train=2, num_val=2)
    for split in ("train", "val"):
        lines = (folder / f"{split}.list").read_text().splitlines()
        (folder / f"{split}_videos.txt").write_text(
            "".join(f"{folder / path[:-len('.avi')]} {label}\n" for path, label in (l.split() for l in lines)))
    return folder


def _data_overrides(name, folder):
    out = []
    for mode, split in (("train", "train"), ("valid", "val"), ("test", "val")):
        if name == "timesformer_ucf101_videos_xpu":  # lists without extensions; the config appends '.avi'
            out += [f"DATASET.{mode}.file_path={folder / (split + '_videos.txt')}"]
        else:
            out += [f"DATASET.{mode}.data_prefix={folder}", f"DATASET.{mode}.file_path={folder / (split + '.list')}"]
    return out


def _run(*args):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.parametrize("name", sorted(MODEL_NAME))
def test_paddlevideo_config_runs_unchanged(name, data, tmp_path):
    config = CONFIGS / f"{name}.yaml"
    overrides = TINY_MODEL + TINY_CLIPS + VALID_CLIPS[name] + _data_overrides(name, data)
    out = tmp_path / "output"
    # train: 2 clips, batch 1 (the PP config's 8 too: -o), one epoch = two steps; PaddleVideo saves epoch 1
    train = _run("main.py", "--validate", "-c", config, "-o", *overrides, "DATASET.batch_size=1", "epochs=1",
                 f"output_dir={out}", "log_interval=1")
    steps = re.findall(r"train step:(\d+) ", train.stdout + train.stderr)
    assert steps == ["0", "1"], train.stderr[-2000:]
    weights = out / f"{MODEL_NAME[name]}_epoch_00001.pdparams"
    assert weights.is_file() and "END epoch:1   val" in train.stdout + train.stderr

    test = _run("main.py", "--test", "-c", config, "-o", *overrides, "-w", weights)
    assert "[TEST] finished: 2 clips scored, 0 skipped" in test.stdout + test.stderr

    export_dir = tmp_path / "inference"
    _run("tools/export_model.py", "-c", config, *[a for o in overrides for a in ("--override", o)],
         "-p", weights, "-o", export_dir, "--save_name", "inference")
    assert (export_dir / "inference.pdmodel").is_file() and (export_dir / "inference.pdiparams").is_file()

    predict = _run("tools/predict.py", "--config", config, *[a for o in overrides for a in ("-o", o)],
                   "--input_file", data / "val" / "000000.avi", "--model_file", export_dir / "inference.pdmodel",
                   "--params_file", export_dir / "inference.pdiparams", "--use_gpu=False", "--enable_mkldnn=False")
    lines = predict.stdout.splitlines()
    assert lines[0].startswith("Current video file: ") and re.fullmatch(r"\ttop-1 class: \d+", lines[1])
    assert 0.0 < float(lines[2].split(": ")[1]) <= 1.0
