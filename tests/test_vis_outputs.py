"""What the tools write for people to look at: ``main.py --test``'s test_report/ (its numbers equal a numpy
computation from the run's own test_scores.npz) and ``tools/predict.py --visualize`` (annotated videos with the
input's frame count and size, decodable by the project's decoders)."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from engine_helpers import DEMO_CONFIG, REPO, data_overrides, demo_cfg, make_data, run_main
from test_reliability_cli import read_only  # noqa: F401  (a fixture)

CLASS_NAMES = ["right", "left", "down", "up"]  # the demo data's label_list.txt


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Demo data (12 val clips and one broken one) and a tiny model trained for 8 updates (seed chosen so it
    predicts more than one class: the confusion matrix is not a single column)."""
    from paddlevideo.tasks.train import train_model

    folder = tmp_path_factory.mktemp("data")
    make_data(folder, num_train=16, num_val=12)
    out = tmp_path_factory.mktemp("weights")
    train_model(demo_cfg(folder, out, "epochs=2", "DATASET.batch_size=4", "GRADIENT_ACCUMULATION.global_batch_size=4",
                         "OPTIMIZER.learning_rate.warmup_steps=2", "OPTIMIZER.learning_rate.learning_rate=0.01",
                         "log_interval=100"), seed=1)
    (folder / "val" / "broken.avi").write_bytes(b"not a video" * 20)
    with open(folder / "val.list", "a", encoding="utf-8") as f:
        f.write("val/broken.avi 1\n")
    return folder, out / "TimeSformer_demo_epoch_00002.pdparams"


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_cli_test_report_equals_numpy_from_saved_scores(tiny, tmp_path):
    folder, weights = tiny
    out = tmp_path / "eval"
    proc = run_main(["--test", "-c", str(DEMO_CONFIG), "-w", str(weights), "--save_scores", "--output_dir", str(out),
                     "-o", *data_overrides(folder), f"label_file={folder / 'label_list.txt'}",
                     f"output_dir={tmp_path / 'unused'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[TEST] finished: 12 clips scored, 1 skipped" in proc.stdout
    saved = np.load(out / "test_scores.npz")  # --output_dir holds the scores and test.log too
    assert (out / "test.log").is_file() and not (weights.parent / "test_report").exists()
    labels, predicted = saved["labels"], np.argmax(saved["scores"], axis=1)
    assert len(labels) == 12 and len(set(predicted.tolist())) >= 2, predicted

    report = out / "test_report"
    matrix = np.zeros((4, 4), int)
    for true, pred in zip(labels, predicted):
        matrix[true, pred] += 1
    rows = read_csv(report / "confusion_matrix.csv")
    assert rows[0][1:] == CLASS_NAMES and [r[0] for r in rows[1:]] == CLASS_NAMES
    np.testing.assert_array_equal(np.array([[int(v) for v in r[1:]] for r in rows[1:]]), matrix)

    per_class = read_csv(report / "per_class_accuracy.csv")[1:]
    assert [r[1] for r in per_class] == CLASS_NAMES
    for c, row in enumerate(per_class):
        mine = labels == c
        assert int(row[2]) == mine.sum() and int(row[3]) == (predicted[mine] == c).sum()
        if mine.any():
            assert float(row[4]) == pytest.approx(np.mean(predicted[mine] == c), abs=1e-6)

    pairs = read_csv(report / "most_confused.csv")[1:]
    errors = {(t, p): n for (t, p), n in np.ndenumerate(matrix) if t != p and n}
    assert {(int(r[0]), int(r[2])): int(r[4]) for r in pairs} == errors
    assert [int(r[4]) for r in pairs] == sorted(errors.values(), reverse=True)
    assert (report / "skipped.txt").read_text().strip().endswith("broken.avi")
    assert (report / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_next_to_read_only_weights_is_one_warning_and_the_metrics_stand(tiny, tmp_path, read_only):
    folder, weights = tiny
    proc = run_main(["--test", "-c", str(DEMO_CONFIG), "-w", str(weights), "-o", *data_overrides(folder),
                     f"output_dir={tmp_path / 'out'}"], env=read_only(weights.parent))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[TEST] finished: 12 clips scored, 1 skipped" in proc.stdout
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines() if "test report not written" in line]
    assert len(warnings) == 1 and str(weights.parent / "test_report") in warnings[0], proc.stdout[-2000:]
    assert "read-only" in warnings[0] and "--output_dir" in warnings[0]
    assert "Traceback" not in proc.stderr
    assert not (weights.parent / "test_report").exists()


def test_report_goes_next_to_the_weights_by_default(tiny, tmp_path):
    folder, weights = tiny
    import shutil

    here = tmp_path / "weights"
    here.mkdir()
    shutil.copy(weights, here / "w.pdparams")
    proc = run_main(["--test", "-c", str(DEMO_CONFIG), "-w", str(here / "w.pdparams"), "-o",
                     *data_overrides(folder), f"output_dir={tmp_path / 'out'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_csv(here / "test_report" / "per_class_accuracy.csv")
    assert [r[1] for r in rows[1:]] == ["0", "1", "2", "3"]  # no label list named: class ids


def test_predict_visualize_writes_decodable_annotated_videos(tiny, tmp_path):
    from paddlevideo.loader.decoders import open_video
    from paddlevideo.deploy.export import export_model
    from paddlevideo.config import get_config

    folder, weights = tiny
    cfg = get_config(str(DEMO_CONFIG), data_overrides(folder), show=False)
    exported = export_model(cfg, str(weights), str(tmp_path / "infer"), fmt="pdmodel")
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("000000.avi", "000001.avi"):
        (videos / name).write_bytes((folder / "val" / name).read_bytes())
    out = tmp_path / "annotated"
    proc = subprocess.run([sys.executable, "tools/predict.py", "-c", str(DEMO_CONFIG), "-i", str(videos),
                           "--model_file", exported["model"], "--params_file", exported["params"], "--top_k", "2",
                           "--label_file", str(folder / "label_list.txt"), "--visualize", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("Current video file:") == 2
    for name in ("000000.avi", "000001.avi"):
        written = out / f"{name}.mp4"
        with open_video(str(videos / name), "pyav") as source:
            frames_in = source.get_frames(np.arange(source.num_frames))
        for backend in ("decord", "pyav", "cv2"):
            with open_video(str(written), backend) as reader:
                assert reader.num_frames == len(frames_in), backend
                frames_out = reader.get_frames(np.arange(reader.num_frames))
            assert frames_out.shape == frames_in.shape, backend
        # the labels' box darkens the frame behind the text to 45 %: its top-left corner (padding, no text)
        corner_in, corner_out = frames_in[:, :2, :2].mean(), frames_out[:, :2, :2].mean()
        assert corner_out < 0.7 * corner_in, (corner_in, corner_out)

    bad = subprocess.run([sys.executable, "tools/predict.py", "-c", str(DEMO_CONFIG), "-i", str(videos),
                          "--model_file", exported["model"], "--visualize", str(videos / "000000.avi")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 1 and lines[-1].startswith("predict.py: error: --visualize") and "Traceback" not in \
        bad.stderr, bad.stderr[-2000:]
