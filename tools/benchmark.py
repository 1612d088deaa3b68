#!/usr/bin/env python
"""Benchmark TimeSformer on this machine: inference, a training step, data loading.

Every contender (dygraph fused / plain attention, Paddle Inference, ONNX Runtime, recompute on/off,
HF transformers TimeSformer when ``torch`` and ``transformers`` are importable) runs in its own
worker process, so that each has a clean environment (threads, BLAS variables) and its own peak RSS.
The workers are driven round by round (interleaved), together with a large fp32 sgemm
(``paddle.matmul``) that gives the machine's measured peak in the same run; a shared machine's
noise then hits every contender alike.

Examples::

    python tools/benchmark.py --mode infer --rounds 5
    python tools/benchmark.py --mode train --batch_size 4 --contenders dygraph,dygraph_recompute
    python tools/benchmark.py --mode infer -o MODEL.backbone.depth=2 --rounds 3   # quick look
    python tools/benchmark.py --mode infer --profile       # where the time goes, by op
    python tools/benchmark.py --mode loader
    python tools/benchmark.py --mode timeline --batch_size 2 --contenders paddle_inference,openvino_int8
    python tools/benchmark.py --mode checkpoint --rounds 5   # safe checkpoint loading vs paddle.load

Output: one table per mode (median and min ms, ratio to the reference contender, GFLOP/s from the
analytic FLOP count, % of the sgemm peak, peak RSS), optionally written as JSON (``--json``). Every row did
the work the command asks (each runner reports what it fed the model; a row that did other work, or an fp32
row above the sgemm peak, is refused with the reason). The runners and the table of contenders live in
``tools/benchmarks/``; this file is the command line.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("benchmark.py", __name__)
import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

# Only light imports here: worker processes start with "spawn" and import this module again, and the
# parent must not start an OpenMP runtime of its own (its spinning threads would steal cycles).
from benchmarks.checkpoint import run_checkpoint  # noqa: E402
from benchmarks.contenders import contenders_for  # noqa: E402
from benchmarks.dygraph import DygraphRunner  # noqa: E402,F401  (tests build runners through this module)
from benchmarks.loader import run_loader  # noqa: E402
from benchmarks.model import base_spec, run_model_benchmark  # noqa: E402
from benchmarks.peak import MatmulsRunner  # noqa: E402,F401
from benchmarks.profile import run_profile  # noqa: E402
from benchmarks.report import low_precision_ratios, print_model_report  # noqa: E402,F401
from benchmarks.timeline import run_timeline_benchmark  # noqa: E402

from paddlevideo.config import ConfigError, get_config  # noqa: E402
from paddlevideo.common.logger import get_logger, setup_logger  # noqa: E402
from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.runtime import configure_cpu  # noqa: E402
from paddlevideo.common.cpu_features import cpu_model_name, cpu_vendor, isa_summary  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_k400_videos.yaml"
MODES = ("infer", "train", "loader", "timeline", "checkpoint")
INFER_CONTENDERS = contenders_for("infer")
TRAIN_CONTENDERS = contenders_for("train")


def environment_summary(args):
    """Machine and library versions, for docs/benchmarks.md."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for dist in ("paddlepaddle", "onnxruntime", "paddle2onnx", "openvino", "nncf", "torch", "transformers", "numpy"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu_model_name(),
        "vendor": cpu_vendor(),
        "logical_cpus": os.cpu_count(),
        "threads": args.threads,
        "isa": isa_summary(),
        "python": platform.python_version(),
        "versions": versions,
        "command": "python tools/benchmark.py " + " ".join(sys.argv[1:]),
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES + ("all",), default="infer")
    parser.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("-o", "--override", action="append", default=[],
                        help="config override KEY.PATH=value (repeatable), e.g. MODEL.backbone.depth=2")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--views", type=int, default=1, help="views per clip at inference (3 = test protocol)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--contenders", type=lambda s: [x for x in s.split(",") if x], default=None,
                        help="comma-separated subset (infer: %s; train: %s)"
                             % (",".join(INFER_CONTENDERS), ",".join(TRAIN_CONTENDERS)))
    parser.add_argument("--timeline_windows", type=int, default=8,
                        help="--mode timeline: windows in the long video (rounded down to whole batches)")
    parser.add_argument("--profile", action="store_true", help="also profile forward and a training step by op")
    parser.add_argument("--profile_top", type=int, default=15)
    parser.add_argument("--json", type=Path, default=None, help="write all results to this JSON file")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if not args.config.is_file():
        parser.error(f"config file {args.config} does not exist")
    for name in ("batch_size", "views", "threads", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    setup_logger(None, "INFO", 0)
    logger = get_logger()
    try:
        get_config(str(args.config), ["MODEL.backbone.pretrained="] + args.override, show=False)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    # The parent only drives the workers; each worker sets up its own CPU environment (or not, for the
    # default-environment contender). A dry run on a copy shows what configure_cpu() sets.
    applied = configure_cpu(threads=args.threads, environ=dict(os.environ))
    env = environment_summary(args)
    env["configure_cpu"] = applied
    print(f"machine: {env['cpu']} ({env['vendor']}), {env['logical_cpus']} logical CPUs, {args.threads} threads; "
          f"configure_cpu sets {applied} + malloc tuning; {env['versions']}")
    print(env["isa"])
    results = {"environment": env}
    modes = MODES if args.mode == "all" else (args.mode,)
    for mode in modes:
        if mode == "loader":
            results["loader"] = run_loader(args.config, args.rounds, args.threads)
            continue
        if mode == "timeline":
            results["timeline"] = run_timeline_benchmark(args, logger)
            continue
        if mode == "checkpoint":
            results["checkpoint"] = run_checkpoint(args, logger)
            continue
        report = run_model_benchmark(args, mode, logger)
        print_model_report(report)
        results[mode] = report
    if args.profile:
        results["profile"] = run_profile(lambda mode: base_spec(args, mode), args.profile_top, logger)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
        print(f"results written to {args.json}")
    return results


if __name__ == "__main__":
    sys.exit(run("benchmark.py", main))
