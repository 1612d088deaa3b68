"""tools/benchmark.py end to end on the tiny model: the optimised default path equals the plain one.

No timing claim is checked here (timings live in docs/benchmarks.md); the test checks that the
tool runs its contenders in separate processes and reports consistent numbers, and that the
out-of-the-box path (fused attention + configure_cpu: dense views, malloc reuse) computes the same
scores as plain attention in the default environment.
"""

import importlib
import sys

import pytest
from conftest import K400_CONFIG, REPO, TINY_OVERRIDES

from paddlevideo.utils import get_config
from paddlevideo.utils.flops import flops_from_config


@pytest.fixture(scope="module")
def benchmark_module():
    # A regular import (tools/ on sys.path): the spawned workers import the module by name.
    sys.path.insert(0, str(REPO / "tools"))
    try:
        yield importlib.import_module("benchmark")
    finally:
        sys.path.remove(str(REPO / "tools"))


def test_infer_contenders_agree_and_report(benchmark_module, tmp_path):
    argv = ["--mode", "infer", "--rounds", "2", "--warmup", "0", "--batch_size", "2", "--threads", "1",
            "--contenders", "dygraph_default_env,dygraph", "--json", str(tmp_path / "r.json")]
    for item in TINY_OVERRIDES:
        argv += ["-o", item]
    results = benchmark_module.main(argv)
    report = results["infer"]
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    assert report["flops_per_iter"] == 2 * flops_from_config(cfg.MODEL)
    assert report["reference"] == "dygraph_default_env"
    rows = {row["name"]: row for row in report["rows"]}
    assert set(rows) == {"dygraph_default_env", "dygraph"}
    optimised = rows["dygraph"]
    assert "error" not in optimised and len(optimised["times_ms"]) == 2
    assert optimised["max_abs_diff_vs_ref"] is not None and optimised["max_abs_diff_vs_ref"] < 1e-5
    assert optimised["min_ms"] <= optimised["median_ms"]
    assert 0 < optimised["setup_rss_mb"] <= optimised["peak_rss_mb"]
    assert report["sgemm_peak_gflops"] > 0
    assert (tmp_path / "r.json").is_file()


def test_unknown_contender_is_a_clear_error(benchmark_module):
    with pytest.raises(SystemExit, match="unknown contender"):
        benchmark_module.main(["--mode", "infer", "--contenders", "nope", "-o", "MODEL.backbone.depth=1"])
