"""main.py --test: printed top-1/top-5 equal a numpy computation from the saved scores; broken clips counted."""

import re
import subprocess
import sys

import numpy as np
import pytest

from engine_helpers import DEMO_CONFIG, REPO, data_overrides, demo_cfg, make_data
from paddlevideo.common import save_load


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A briefly trained tiny model (so scores are not uniform) and its data folder with one broken clip."""
    from paddlevideo.tasks.train import train_model

    folder = tmp_path_factory.mktemp("demo")
    make_data(folder, num_train=16, num_val=10)
    out = tmp_path_factory.mktemp("out")
    train_model(demo_cfg(folder, out, "epochs=1", "DATASET.batch_size=4", "GRADIENT_ACCUMULATION.global_batch_size=4"),
                seed=5)
    (folder / "val" / "broken.avi").write_bytes(b"not a video at all" * 10)
    with open(folder / "val.list", "a", encoding="utf-8") as f:
        f.write("val/broken.avi 2\n")
    return folder, out / "TimeSformer_demo_epoch_00001.pdparams"


def _labels(list_file):
    return np.array([int(line.split()[1]) for line in open(list_file, encoding="utf-8") if line.strip()])


def test_cli_test_matches_numpy_on_saved_scores(trained, tmp_path):
    folder, weights = trained
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "--test", "-c", str(DEMO_CONFIG), "-w", str(weights),
                           "--save_scores", "-o", *data_overrides(folder), f"output_dir={tmp_path}",
                           "DATASET.test_batch_size=4"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [l for l in proc.stdout.splitlines() if "[TEST]" in l]
    assert len(line) == 1, proc.stdout[-3000:]
    match = re.search(r"(\d+) clips scored, (\d+) skipped .* top1: ([0-9.]+) top5: ([0-9.]+)", line[0])
    assert match, line[0]
    scored, skipped, top1, top5 = int(match[1]), int(match[2]), float(match[3]), float(match[4])
    assert (scored, skipped) == (10, 1)
    assert "broken.avi" in proc.stdout + proc.stderr
    saved = np.load(tmp_path / "test_scores.npz")
    labels = _labels(folder / "val.list")
    np.testing.assert_array_equal(saved["indices"], np.arange(10))
    np.testing.assert_array_equal(saved["labels"], labels[:10])  # labels from the list file, not the engine
    assert saved["scores"].shape == (10, 4)
    hits1 = [int(np.argmax(row) == lab) for row, lab in zip(saved["scores"], labels)]
    hits5 = [int(lab in np.argsort(-row)[:5]) for row, lab in zip(saved["scores"], labels)]
    assert top1 == pytest.approx(round(sum(hits1) / 10, 4), abs=1e-9)
    assert top5 == pytest.approx(round(sum(hits5) / 10, 4), abs=1e-9)
    assert "test" in proc.stderr  # the tqdm progress bar


def test_test_scores_equal_direct_forward(trained, tmp_path):
    """The engine's scores are the model's 3-view average for each clip (independent forward here)."""
    import paddle

    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.modeling.builder import build_model
    from paddlevideo.tasks.test import test_model

    folder, weights = trained
    cfg = demo_cfg(folder, tmp_path, "DATASET.test_batch_size=3")
    result = test_model(cfg, str(weights))
    model = build_model(cfg.MODEL)
    model.set_state_dict(save_load.load(str(weights)))
    model.eval()
    pipeline = build_pipeline(cfg.PIPELINE.test)
    for i in (0, 7):
        imgs = pipeline({"filename": str(folder / "val" / f"{i:06d}.avi")})["imgs"]
        with paddle.no_grad():
            views = [model.head(model.backbone(paddle.to_tensor(imgs[None, :, v * 8:(v + 1) * 8]))) for v in range(3)]
        want = np.mean([v.numpy()[0] for v in views], axis=0)
        np.testing.assert_allclose(result["scores"][i], want, rtol=1e-4, atol=1e-5)


def test_cli_export_writes_inference_model(trained, tmp_path):
    folder, weights = trained
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "--export", "-c", str(DEMO_CONFIG), "-w", str(weights),
                           "--output_dir", str(tmp_path / "inf"), "-o", f"output_dir={tmp_path / 'logs'}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "inf" / "TimeSformer_demo.pdmodel").is_file()
    assert (tmp_path / "inf" / "TimeSformer_demo.pdiparams").is_file()
    missing = subprocess.run([sys.executable, str(REPO / "main.py"), "--export", "-c", str(DEMO_CONFIG), "-w",
                              str(tmp_path / "nope.pdparams"), "--output_dir", str(tmp_path / "inf2"), "-o",
                              f"output_dir={tmp_path / 'logs'}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "nope.pdparams" in missing.stderr and "Traceback" not in missing.stderr
