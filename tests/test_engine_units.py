"""Engine pieces that need no data: AMP settings, accumulation arithmetic, CLI checks, atomic checkpoints."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from paddlevideo.tasks import run_files
from paddlevideo.tasks.amp import amp_settings
from paddlevideo.tasks.train import accumulation_steps
from paddlevideo.config import AttrDict, ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_amp_gpu_o1_uses_fp16_autocast_and_dynamic_scaling():
    s = amp_settings(True, "O1", device="gpu:0")
    assert (s.enabled, s.level, s.dtype, s.use_scaler, s.decorate, s.master_weight) == \
        (True, "O1", "float16", True, False, False)
    assert s.init_loss_scaling > 1 and not s.warning


def test_amp_gpu_o2_decorates_with_master_weights():
    s = amp_settings(True, "O2", device="gpu:1")
    assert (s.enabled, s.level, s.use_scaler, s.decorate, s.master_weight) == (True, "O2", True, True, True)


def test_amp_on_cpu_falls_back_to_fp32_with_warning():
    s = amp_settings(True, "O2", device="cpu")
    assert not s.enabled and not s.use_scaler and "fp32" in s.warning
    assert amp_settings(False, "O1", device="gpu:0").enabled is False
    with pytest.raises(ConfigError, match="O3"):
        amp_settings(True, "O3", device="gpu:0")


def test_accumulation_steps():
    cfg = AttrDict({"DATASET": AttrDict({"batch_size": 2}), "GRADIENT_ACCUMULATION": AttrDict({"global_batch_size": 16})})
    assert accumulation_steps(cfg, 1) == 8
    assert accumulation_steps(cfg, 4) == 2
    with pytest.raises(ConfigError, match="global_batch_size"):
        accumulation_steps(cfg, 3)
    del cfg["GRADIENT_ACCUMULATION"]
    assert accumulation_steps(cfg, 2) == 1


def _main(*args):
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args, words", [
    (["-c", "x.yaml", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["-c", "x.yaml", "--test"], "--test needs the weights"),
    (["-c", "x.yaml", "--test", "--export", "-w", "a"], "not allowed with"),
    (["-c", "x.yaml", "--test", "-w", "a", "--validate"], "--validate only apply to training"),
    (["-c", "x.yaml", "--amp_level", "O2"], "--amp_level needs --amp"),
    (["-c", "x.yaml", "--resume", "-w", "a"], "--resume"),
    (["-c", "x.yaml", "--test", "-w", "a", "--use_vdl"], "--use_vdl only applies to training"),
    (["-c", "x.yaml", "--output_dir", "d"], "--output_dir is for --export and --test"),
])
def test_cli_rejects_bad_flags(args, words):
    proc = _main(*args)
    assert proc.returncode != 0 and words in proc.stderr, proc.stderr


def test_cli_config_errors_are_one_line(tmp_path):
    proc = _main("-c", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "missing.yaml" in proc.stderr and "Traceback" not in proc.stderr
    cfg = REPO / "configs" / "recognition" / "timesformer" / "timesformer_k400_videos.yaml"
    proc = _main("-c", str(cfg), "-o", "MODEL.nope.x=1")
    assert proc.returncode == 1 and "MODEL.nope" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("override, words", [
    ("MODEL.backbone.num_segs=4", "unexpected keyword argument 'num_segs'"),  # a misspelt key
    ("MODEL.backbone.attention_type=divided", "attention_type 'divided' is unknown"),  # a bad choice
    ("MODEL.backbone.init_std=0", "init_std must be > 0"),
])
def test_cli_bad_model_keys_are_one_line(tmp_path, override, words):
    cfg = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"
    proc = _main("-c", str(cfg), "-o", override, "-o", f"output_dir={tmp_path}")
    assert proc.returncode == 1, proc.stderr
    assert words in proc.stderr and "VisionTransformer" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("main.py: error:"), proc.stderr


_SAVER = r"""
import sys, numpy as np
from paddlevideo.tasks import run_files
out = sys.argv[1]
for k in range(1, 10000):
    # ~8 MB per file so a kill lands inside a write most of the time
    w = np.full((2_000_000,), k, "float32")
    run_files.save_epoch(out, "M", 1 + k % 2, {"w": w}, {"optimizer": {}, "epoch": k})
    print(k, flush=True)
"""


def test_sigkill_while_saving_leaves_loadable_checkpoints(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    for _ in range(4):  # wait until a few pairs exist, then kill at an arbitrary point of a write
        assert proc.stdout.readline(), "saver died"
    time.sleep(0.137)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epoch = run_files.latest_epoch(str(tmp_path), "M")
    assert epoch in (1, 2)
    for e in (1, 2):
        prefix = run_files.epoch_prefix(str(tmp_path), "M", e)
        if not (os.path.isfile(prefix + ".pdopt") and os.path.isfile(prefix + ".pdparams")):
            continue
        model_state, opt_state = run_files.load_epoch(str(tmp_path), "M", e)
        w = np.asarray(model_state["w"])
        assert w.shape == (2_000_000,) and np.all(w == w[0]), "a torn checkpoint was left behind"
        assert (int(w[0]) + 1) % 2 + 1 == e or int(w[0]) % 2 + 1 == e
