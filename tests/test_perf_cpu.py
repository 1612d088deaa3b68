"""CPU/BLAS set-up: the AMD MKL variable only on AMD, never on Intel, never at import time; library users get
the set-up when they build their first model (opt-out PADDLEVIDEO_CONFIGURE_CPU=0)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from paddlevideo.runtime import (
    CONFIGURE_CPU_SWITCH,
    MKL_CPU_TYPE_VAR,
    STRIDE_FLAG,
    configure_cpu,
)
from paddlevideo.common.cpu_features import cpu_model_name, cpu_vendor


def test_amd_gets_the_mkl_code_path_variable():
    env = {}
    applied = configure_cpu(environ=env, vendor="AuthenticAMD")
    assert env == {MKL_CPU_TYPE_VAR: "5", STRIDE_FLAG: "0"} and applied == env


def test_intel_never_gets_the_variable():
    env = {}
    assert configure_cpu(environ=env, vendor="GenuineIntel") == {STRIDE_FLAG: "0"}
    assert MKL_CPU_TYPE_VAR not in env


def test_user_value_is_kept_and_threads_are_set():
    env = {MKL_CPU_TYPE_VAR: "4", STRIDE_FLAG: "1"}
    configure_cpu(threads=3, environ=env, vendor="AuthenticAMD")
    assert env == {MKL_CPU_TYPE_VAR: "4", STRIDE_FLAG: "1", "OMP_NUM_THREADS": "3"}
    with pytest.raises(ValueError, match="threads"):
        configure_cpu(threads=0, environ={}, vendor="GenuineIntel")


def test_vendor_is_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n")
    assert cpu_vendor(str(info)) == "AuthenticAMD"
    assert cpu_model_name(str(info)) == "AMD EPYC 7B13"


def test_import_changes_no_environment():
    code = ("import os; before = dict(os.environ); import paddlevideo.runtime, paddlevideo.config; "
            "print(dict(os.environ) == before)")
    env = {k: v for k, v in os.environ.items() if k != MKL_CPU_TYPE_VAR}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), check=True)
    assert out.stdout.strip() == "True"


LIBRARY_USER = r"""
import json, os, sys
import paddle  # Paddle's own import sets variables of its own (CUSTOM_DEVICE_ROOT, ...): not ours to judge
before = dict(os.environ)
flag_before = paddle.get_flags(["FLAGS_use_stride_kernel"])["FLAGS_use_stride_kernel"]
import paddlevideo, paddlevideo.modeling, paddlevideo.runtime, paddlevideo.deploy.export
from paddlevideo.config import get_config
from paddlevideo.common.logger import setup_logger
setup_logger()
imported = dict(os.environ)
if sys.argv[2] == "entry_point":  # main.py and tools/ set the CPU up themselves, early
    paddlevideo.runtime.configure_cpu()
cfg = get_config(sys.argv[1], ["MODEL.backbone.depth=1", "MODEL.backbone.embed_dim=64", "MODEL.backbone.num_heads=2",
                               "MODEL.head.in_channels=64", "MODEL.backbone.pretrained="], show=False)
from paddlevideo.modeling.layers.cpu_kernels import loaded_cpu_kernels
model = paddlevideo.modeling.build_model(cfg.MODEL)
kernels_after_build = loaded_cpu_kernels() is not None
model.backbone(paddle.randn([1, 3, 2, 224, 224]))  # the first forward: uses what was built, builds nothing
kernels_after_forward = loaded_cpu_kernels() is not None
paddlevideo.modeling.build_model(cfg.MODEL)  # a second model: nothing more to set
print("RESULT " + json.dumps({
    "kernels_after_build": kernels_after_build, "kernels_after_forward": kernels_after_forward,
    "import_changed": {k: v for k, v in imported.items() if before.get(k) != v},
    "build_changed": {k: v for k, v in os.environ.items() if imported.get(k) != v},
    "flag_before": flag_before,
    "flag_after": paddle.get_flags(["FLAGS_use_stride_kernel"])["FLAGS_use_stride_kernel"],
}))
"""


def _library_user(mode, **env_changes):
    from conftest import K400_CONFIG, REPO

    env = {k: v for k, v in os.environ.items() if k not in (MKL_CPU_TYPE_VAR, STRIDE_FLAG, CONFIGURE_CPU_SWITCH)}
    env.update(env_changes, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", LIBRARY_USER, str(K400_CONFIG), mode], capture_output=True,
                          text=True, env=env, cwd=str(REPO), timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    log_lines = [line for line in (done.stdout + done.stderr).splitlines() if "CPU set-up for fast fp32 work" in line]
    return result, log_lines


def test_building_a_model_applies_the_cpu_set_up_once():
    result, log_lines = _library_user("library")
    assert result["import_changed"] == {}  # importing paddlevideo changes nothing
    assert result["flag_before"] is True  # Paddle's default: strided views
    expected = {STRIDE_FLAG: "0"}
    if cpu_vendor() == "AuthenticAMD":
        expected[MKL_CPU_TYPE_VAR] = "5"
    assert result["build_changed"] == expected and result["flag_after"] is False
    assert len(log_lines) == 1, log_lines  # one line, for the first model only, naming what was set
    # The C++ kernels are built with the model, never by its first forward (a training ETA must not count it).
    assert result["kernels_after_forward"] == result["kernels_after_build"]
    if shutil.which("g++"):
        assert result["kernels_after_build"] is True
    assert all(f"{key}={value}" in log_lines[0] for key, value in expected.items())
    if sys.platform.startswith("linux"):
        assert "malloc reuse" in log_lines[0]


def test_opt_out_and_entry_points_keep_their_set_up():
    result, log_lines = _library_user("library", **{CONFIGURE_CPU_SWITCH: "0"})
    assert result["build_changed"] == {} and result["flag_after"] is True and log_lines == []
    # An entry point that called configure_cpu() itself: building the model sets nothing more, logs nothing.
    result, log_lines = _library_user("entry_point")
    assert result["build_changed"][STRIDE_FLAG] == "0" and result["flag_after"] is False and log_lines == []
