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

from paddlevideo.config import get_config
from tools.benchmarks.flops import flops_from_config


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
    # Every contender reported the work it ran (read in its worker), and it is the work asked for.
    assert report["work_per_iter"] == {"clips": 2, "frames": 4, "size": 32, "train": False}
    assert all(row["work"] == report["work_per_iter"] and "refused" not in row for row in rows.values())
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
    options = benchmark_module.INFER_CONTENDERS["dygraph_default_env"].options
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


def test_a_contender_doing_less_work_is_refused(benchmark_module):
    from benchmarks.common import expected_work
    from benchmarks.report import build_report

    class FirstViewOnlyRunner(benchmark_module.DygraphRunner):
        """Does less than asked: only the first view of each clip reaches the model (what the hf_torch
        contender once did with --views 3 while its row counted every view's FLOPs)."""

        def __init__(self, spec):
            super().__init__(spec)
            self.x = self.x[:, :, : self.x.shape[2] // spec["views"]]

    spec = {"config": str(K400_CONFIG), "overrides": TINY_OVERRIDES, "batch_size": 1, "views": 2, "mode": "infer"}
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    expected = expected_work(cfg, 1, 2, train=False)
    honest, short = benchmark_module.DygraphRunner(spec).work(), FirstViewOnlyRunner(spec).work()
    # The work is read from what reached the backbone, not from the spec both runners were given.
    assert honest == expected == {"clips": 2, "frames": 4, "size": 32, "train": False}
    assert short == {"clips": 1, "frames": 4, "size": 32, "train": False}
    sgemm = _Timed("sgemm", 0.1, None)
    sgemm.values = [100.0]
    rows = build_report(sgemm, [_Timed("dygraph", 1.0, honest), _Timed("first_view_only", 0.5, short)],
                        "dygraph", flops=1e9, expected=expected, diffs={}, mode="infer")["rows"]
    assert "refused" not in rows[0]
    assert rows[1]["refused"].startswith("did other work than asked: 1 clips x 4 frames x 32 px, forward per "
                                         "iteration instead of 2 clips")
    assert rows[1]["times_ms"] == [500.0]  # kept in the JSON, out of the table


class _Timed:
    def __init__(self, name, seconds, work):
        self.name, self.times, self.work, self.error = name, [seconds], work, None
        self.setup_rss = self.peak_rss = 1.0


def test_a_row_above_the_fp32_peak_is_refused_but_not_a_low_precision_one(benchmark_module):
    from benchmarks.report import build_report

    work = {"clips": 1, "frames": 8, "size": 224, "train": False}
    sgemm = _Timed("sgemm", 0.1, None)
    sgemm.values = [100.0]  # GFLOP/s
    rows = build_report(sgemm, [_Timed("dygraph", 1.0, work), _Timed("paddle_inference", 0.5, work),
                                _Timed("openvino_int8", 0.5, work)],
                        "dygraph", flops=80e9, expected=work, diffs={}, mode="infer")["rows"]
    rows = {row["name"]: row for row in rows}
    assert rows["dygraph"]["pct_peak"] == pytest.approx(80.0) and "refused" not in rows["dygraph"]
    assert rows["paddle_inference"]["pct_peak"] == pytest.approx(160.0)
    assert "160% of the fp32 sgemm peak" in rows["paddle_inference"]["refused"]
    assert "refused" not in rows["openvino_int8"]  # int8 arithmetic may pass the fp32 peak
    assert rows["dygraph"]["speedup_vs_ref"] == 1.0


def test_without_the_reference_row_the_speed_ups_are_blank_not_nan(benchmark_module, capsys):
    from benchmarks.report import build_report, print_model_report

    work = {"clips": 1, "frames": 8, "size": 224, "train": True}
    sgemm = _Timed("sgemm", 0.1, None)
    sgemm.values = [100.0]
    report = build_report(sgemm, [_Timed("dygraph", 2.0, work), _Timed("hf_torch", 4.0, work)],
                          "dygraph_default_env", flops=80e9, expected=work, diffs={}, mode="train")
    assert report["reference"] is None and report["rows"][0]["speedup_vs_ref"] is None
    print_model_report(report)
    out = capsys.readouterr().out
    assert "nan" not in out and "vs None" not in out and "no reference row among the contenders" in out
    assert [line.split()[:3] for line in out.splitlines() if line.startswith(("dygraph ", "hf_torch "))] == [
        ["dygraph", "2000", "2000"], ["hf_torch", "4000", "4000"]]


def test_hf_torch_runs_every_view(benchmark_module):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import numpy as np
    import torch
    from benchmarks.common import expected_work, inputs
    from benchmarks.hf_torch import HFTorchRunner

    spec = {"config": str(K400_CONFIG), "overrides": TINY_OVERRIDES, "batch_size": 2, "views": 3, "mode": "infer",
            "threads": 1}
    runner = HFTorchRunner(spec)
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    assert runner.work() == expected_work(cfg, 2, 3, train=False) == {"clips": 6, "frames": 4, "size": 32,
                                                                      "train": False}
    scores = runner.run()
    # The views of clip b are frames [v*T, (v+1)*T) of the input, each scored alone, then averaged.
    imgs = inputs(spec, cfg)[0]
    with torch.inference_mode():
        per_view = [runner.model(pixel_values=torch.from_numpy(
            np.ascontiguousarray(imgs[:, :, 4 * v: 4 * (v + 1)].transpose(0, 2, 1, 3, 4)))).logits.numpy()
            for v in range(3)]
    np.testing.assert_allclose(scores, np.mean(per_view, axis=0), rtol=1e-5, atol=1e-6)
