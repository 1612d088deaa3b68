"""tools/benchmark.py end to end on the tiny model: the optimised default path equals the plain one.

No timing claim is checked here (timings live in docs/benchmarks.md); the test checks that the
tool runs its contenders in separate processes and reports consistent numbers, and that the
out-of-the-box path (fused attention + configure_cpu: dense views, malloc reuse) computes the same
scores as plain attention in the default environment.
"""

import importlib
import statistics
import sys

import pytest
from conftest import K400_CONFIG, REPO, TINY_OVERRIDES
from helpers import fast_path_calls

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
            "--contenders",
            "dygraph_default_env,dygraph,dygraph_library,paddle_inference,paddle_inference_pir,onnxruntime,matmuls_only,"
            "openvino_fp32",
            "--json", str(tmp_path / "r.json")]
    for item in TINY_OVERRIDES:
        argv += ["-o", item]
    results = benchmark_module.main(argv)
    report = results["infer"]
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    assert report["flops_per_iter"] == 2 * flops_from_config(cfg.MODEL)
    assert report["reference"] == "dygraph_default_env"
    rows = {row["name"]: row for row in report["rows"]}
    assert set(rows) == {"dygraph_default_env", "dygraph", "dygraph_library", "paddle_inference",
                         "paddle_inference_pir", "onnxruntime", "matmuls_only", "openvino_fp32"}
    # Every path that runs the model (the exports users get included) computes the reference's scores.
    for name in ("dygraph", "dygraph_library", "paddle_inference", "paddle_inference_pir", "onnxruntime",
                 "openvino_fp32"):
        assert "error" not in rows[name] and len(rows[name]["times_ms"]) == 2, rows[name]
        assert rows[name]["max_abs_diff_vs_ref"] is not None and rows[name]["max_abs_diff_vs_ref"] < 1e-5, name
    assert rows["matmuls_only"]["max_abs_diff_vs_ref"] is None  # not a model: no scores
    optimised = rows["dygraph"]
    assert optimised["min_ms"] <= optimised["median_ms"]
    assert 0 < optimised["setup_rss_mb"] <= optimised["peak_rss_mb"]
    assert report["sgemm_peak_gflops"] > 0
    assert (tmp_path / "r.json").is_file()
    assert results["environment"]["isa"].startswith("ISA: ")


def test_low_precision_ratios_use_the_fastest_fp32_path(benchmark_module):
    rows = [{"name": "dygraph", "median_ms": 900.0}, {"name": "paddle_inference", "median_ms": 600.0},
            {"name": "hf_torch", "median_ms": 500.0}, {"name": "openvino_fp32", "median_ms": 650.0},
            {"name": "openvino_bf16", "median_ms": 300.0}, {"name": "openvino_int8", "median_ms": 200.0},
            {"name": "onnxruntime", "error": "unavailable"}]
    ratios = benchmark_module.low_precision_ratios(rows)
    assert ratios == {"fp32": "paddle_inference", "speedup": {"openvino_bf16": 2.0, "openvino_int8": 3.0}}
    assert benchmark_module.low_precision_ratios(rows[:2]) is None


def test_unknown_contender_is_a_clear_error(benchmark_module):
    with pytest.raises(SystemExit, match="unknown contender"):
        benchmark_module.main(["--mode", "infer", "--contenders", "nope", "-o", "MODEL.backbone.depth=1"])


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only", "joint_space_time"])
def test_matmuls_only_runs_exactly_the_model_flops(benchmark_module, attention_type):
    # The ceiling row must do the model's products and nothing else: its operands' shapes give the
    # same FLOPs as the analytic count (itself checked against layer hooks in test_perf_flops.py).
    overrides = TINY_OVERRIDES + [f"MODEL.backbone.attention_type={attention_type}"]
    spec = {"config": str(K400_CONFIG), "overrides": overrides, "batch_size": 2, "views": 3}
    runner = benchmark_module.MatmulsRunner(spec)
    macs = 0
    for a, b in runner.sequence:
        assert a.shape[-1] == b.shape[-2] and a.shape[:-2] == b.shape[:-2]
        groups = a.shape[0] if a.ndim == 3 else 1
        macs += groups * a.shape[-2] * a.shape[-1] * b.shape[-1]
    cfg = get_config(str(K400_CONFIG), overrides, show=False)
    assert 2 * macs == 6 * flops_from_config(cfg.MODEL)
    runner.run()


def test_reference_contender_is_built_by_switches(benchmark_module):
    # The straightforward reference: Paddle's own ops, the full last block, plain attention (config switches).
    _, options = benchmark_module.INFER_CONTENDERS["dygraph_default_env"]
    spec = {"config": str(K400_CONFIG), "overrides": TINY_OVERRIDES + options["overrides"], "batch_size": 1,
            "views": 1, "mode": "infer"}
    runner = benchmark_module.DygraphRunner(spec)
    backbone = runner.model.backbone
    assert backbone.kernels == "paddle" and not backbone.cls_only_last_block
    assert {block.attn.impl for block in backbone.blocks} == {"plain"}
    with fast_path_calls() as calls:
        runner.run()
    assert sum(calls.values()) == calls["attention.composite"] > 0  # no project CPU path ran


def test_timeline_contender_runs_and_reports_windows_per_second(benchmark_module):
    """--mode timeline (issue 22) smoke run on the tiny model: both sides timed on the same windows; no
    speed claim here (docs/benchmarks.md has the ViT-B rows)."""
    argv = ["--mode", "timeline", "--rounds", "1", "--warmup", "0", "--batch_size", "2", "--threads", "1",
            "--timeline_windows", "4", "--contenders", "paddle_inference"]
    for item in TINY_OVERRIDES:
        argv += ["-o", item]
    rows = benchmark_module.main(argv)["timeline"]["rows"]
    assert [row["name"] for row in rows] == ["paddle_inference"] and "error" not in rows[0], rows
    row = rows[0]
    assert row["windows"] == 4 and row["views"] == 3 and row["batch_size"] == 2
    assert row["model_windows_per_s"] > 0 and row["timeline_windows_per_s"] > 0
    assert row["ratio"] == pytest.approx(row["timeline_windows_per_s"] / row["model_windows_per_s"])
    assert row["frames"] == 128 + 3 * 64  # 4 windows of the tiny config: 4 x 32 / 30 s at 30 fps, half strides


def test_checkpoint_mode_times_both_loaders_on_the_same_files(benchmark_module):
    """--mode checkpoint runs save_load.load and paddle.load on the config's weights in both protocols (the
    timing claim itself lives in docs/benchmarks.md)."""
    argv = ["--mode", "checkpoint", "--rounds", "2", "--warmup", "0"]
    for item in TINY_OVERRIDES:
        argv += ["-o", item]
    rows = benchmark_module.main(argv)["checkpoint"]
    assert [row["protocol"] for row in rows] == [4, 2]
    for row in rows:
        assert len(row["safe_load_times_ms"]) == len(row["paddle_load_times_ms"]) == 2
        assert row["safe_load_ms"] == statistics.median(row["safe_load_times_ms"])
        assert row["ratio"] == row["safe_load_ms"] / row["paddle_load_ms"]
