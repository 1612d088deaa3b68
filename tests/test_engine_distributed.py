"""paddle.distributed.launch with 2 CPU processes (gloo) equals one process with gradient accumulation."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from engine_helpers import DEMO_CONFIG, MOMENTUM, REPO, data_overrides, load_params, make_data, max_abs_diff


def _run(args, tmp_path, nproc=None):
    cmd = [sys.executable]
    if nproc:
        cmd += ["-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir", str(tmp_path / "launch")]
    cmd += [str(REPO / "main.py"), "-c", str(DEMO_CONFIG), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=400, env=env)
    logs = proc.stdout + proc.stderr
    if nproc:
        for name in sorted(os.listdir(tmp_path / "launch")):
            logs += (tmp_path / "launch" / name).read_text(errors="replace")
    assert proc.returncode == 0, logs[-4000:]
    return logs


@pytest.mark.slow
def test_two_processes_equal_one_process_with_accumulation(tmp_path):
    data = tmp_path / "data"
    make_data(data, num_train=16, num_val=9)
    common = data_overrides(data) + ["epochs=2", "save_interval=1", "DATASET.batch_size=2",
                                     "GRADIENT_ACCUMULATION.global_batch_size=8", "log_interval=1", MOMENTUM]
    one_log = _run(["--validate", "-o", *common, f"output_dir={tmp_path / 'one'}"], tmp_path)
    two_log = _run(["--validate", "-o", *common, f"output_dir={tmp_path / 'two'}"], tmp_path, nproc=2)
    assert "4 accumulation step(s) (global batch 8)" in one_log
    assert "2 process(es), batch 2 per process, 2 accumulation step(s) (global batch 8)" in two_log
    for epoch in (1, 2):
        name = f"TimeSformer_demo_epoch_{epoch:05d}.pdparams"
        a, b = load_params(tmp_path / "one" / name), load_params(tmp_path / "two" / name)
        assert max_abs_diff(a, b) < 1e-5, f"epoch {epoch}"
    # rank 0 alone wrote the log file: each END line appears once per epoch in it
    text = (tmp_path / "two" / "train.log").read_text()
    assert text.count("END epoch:2   train") == 1 and text.count("END epoch:2   val") == 1
    # ... and the training records: one record per iteration of rank 0 (4 per epoch), one per validation
    from paddlevideo.visualization.records import read_records

    records = read_records(tmp_path / "two" / "training_records.jsonl")
    assert [r["step"] for r in records if r["kind"] == "step"] == list(range(1, 9))
    val_top1 = [r["top1"] for r in records if r["kind"] == "epoch"]
    logged = [float(v) for v in re.findall(r"END epoch:\d+\s+val\s+loss_avg: \S+ top1_avg: (\S+)", text)]
    assert len(val_top1) == 2 and np.allclose(val_top1, logged, atol=5e-6), (val_top1, logged)
    # every validation clip counted once: the 2-process top-1 over 9 clips is the 1-process one (a padded
    # shard would count one clip twice, 1/10 steps instead of 1/9)
    one_text = (tmp_path / "one" / "train.log").read_text()
    one_logged = [float(v) for v in re.findall(r"END epoch:\d+\s+val\s+loss_avg: \S+ top1_avg: (\S+)", one_text)]
    assert np.allclose(one_logged, logged, atol=1e-4), (one_logged, logged)
    assert (tmp_path / "two" / "training_curves.png").is_file()

    # --test over 2 processes: every clip scored once (the sampler pads 9 clips to 10), same scores
    weights = str(tmp_path / "one" / "TimeSformer_demo_epoch_00002.pdparams")
    test_args = ["--test", "-w", weights, "--save_scores", "-o", *data_overrides(data), "DATASET.test_batch_size=2"]
    _run(test_args + [f"output_dir={tmp_path / 'test1'}"], tmp_path)
    _run(test_args + [f"output_dir={tmp_path / 'test2'}"], tmp_path, nproc=2)
    s1, s2 = np.load(tmp_path / "test1" / "test_scores.npz"), np.load(tmp_path / "test2" / "test_scores.npz")
    np.testing.assert_array_equal(s2["indices"], np.arange(9))
    np.testing.assert_allclose(s1["scores"], s2["scores"], rtol=1e-5, atol=1e-6)
    # rank 0 wrote the report of the gathered scores: every clip once
    rows = (tmp_path / "one" / "test_report" / "per_class_accuracy.csv").read_text().splitlines()[1:]
    assert sum(int(row.split(",")[2]) for row in rows) == 9
