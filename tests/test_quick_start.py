"""The README quick start's main command, ``python tools/demo.py``, in its --quick size: every step
(generate data, train with --validate, test, export, predict) runs as a subprocess and succeeds."""

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
                 "tools/predict.py"):
        assert f"$ python {step}" in log, step
    assert "Already save the best model (top1 acc)" in log
    assert "Current video file:" in proc.stdout and "top-2 class name:" in proc.stdout  # demo.py asks --top_k 2
    assert (out / "TimeSformer_demo_best.pdparams").is_file()
    assert (infer / "TimeSformer_demo.pdmodel").is_file() and (infer / "TimeSformer_demo.pdiparams").is_file()
