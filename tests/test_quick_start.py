"""The README quick start's main command, ``python tools/demo.py``, in its --quick size: every step
(generate data, train with --validate, test, export, predict, the timeline of a long demo video) runs as a
subprocess and succeeds, and leaves the pictures docs/visualization.md and docs/timeline.md show: training
curves, the test report, an annotated prediction, the timeline."""

import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_demo_quick_runs_every_step(tmp_path):
    data, out, infer = tmp_path / "data", tmp_path / "out", tmp_path / "infer"
    cmd = [sys.executable, "tools/demo.py", "--quick", "--data_dir", str(data), "--output_dir", str(out),
           "--inference_dir", str(infer)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    for step in ("tools/make_demo_data.py", "main.py -c", "main.py --test", "tools/export_model.py",
                 "tools/predict.py", "tools/make_demo_long_video.py"):
        assert f"$ python {step}" in log, step
    assert "Already save the best model (top1 acc)" in log
    assert "Current video file:" in proc.stdout and "top-2 class name:" in proc.stdout  # demo.py asks --top_k 2
    assert (out / "TimeSformer_demo_best.pdparams").is_file()
    assert (infer / "TimeSformer_demo.pdmodel").is_file() and (infer / "TimeSformer_demo.pdiparams").is_file()
    # the pictures: curves drawn from this run's records, the report with class names, the annotated clip
    from paddlevideo.loader.decoders import open_video
    from paddlevideo.visualization.curves import read_curve_data
    from paddlevideo.visualization.records import read_records

    records = read_records(out / "training_records.jsonl")
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2]
    drawn = read_curve_data(out / "training_curves.png")
    assert drawn["validation/top-1"]["y"] == [r["top1"] for r in records if r["kind"] == "epoch"]
    report = (out / "test_report" / "per_class_accuracy.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in report[1:]] == ["right", "left", "down", "up"]
    with open_video(str(out / "predictions" / "000001.avi.mp4"), "pyav") as reader:
        assert reader.num_frames == 8 and reader.get_frames([0]).shape == (1, 256, 256, 3)  # 32 px x 8
    # the timeline of the 6-segment long video, its picture drawn with the true segments
    from paddlevideo.deploy.timeline import read_timeline_csv
    from paddlevideo.deploy.timeline.draw import read_timeline_png
    from paddlevideo.loader.demo_data import read_truth_csv

    truth = read_truth_csv(data / "long" / "demo_long.truth.csv")
    rows = read_timeline_csv(out / "timeline" / "demo_long.timeline.csv")
    assert len(truth) == 6 and rows[-1]["end_s"] <= truth[-1]["end_s"] + 1e-6 and len(rows) > 50
    drawn = read_timeline_png(out / "timeline" / "demo_long.timeline.png")
    assert len(drawn["bars"]) == len(rows) and [t[2] for t in drawn["truth"]] == [t["class_id"] for t in truth]
