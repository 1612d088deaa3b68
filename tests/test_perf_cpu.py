"""CPU/BLAS set-up: the AMD MKL variable only on AMD, never on Intel, never at import time."""

import os
import subprocess
import sys

import pytest

from paddlevideo.utils.cpu import (
    MKL_CPU_TYPE_VAR,
    STRIDE_FLAG,
    configure_cpu,
    cpu_model_name,
    cpu_vendor,
)


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
    code = ("import os; before = dict(os.environ); import paddlevideo.utils.cpu, paddlevideo.utils.flops; "
            "print(dict(os.environ) == before)")
    env = {k: v for k, v in os.environ.items() if k != MKL_CPU_TYPE_VAR}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), check=True)
    assert out.stdout.strip() == "True"
