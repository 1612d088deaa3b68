"""One model benchmark (``--mode infer`` or ``train``): the contenders and an sgemm, interleaved round by round."""

import multiprocessing as mp
import os
import shutil
import tempfile

from paddlevideo.config import get_config

from .common import expected_work
from .contenders import select
from .flops import flops_from_config
from .peak import SgemmRunner
from .report import build_report, compare_outputs, low_precision_ratios
from .workers import ContenderProcess, prepare_worker, runner_prepare_worker, spawn_and_wait


def base_spec(args, mode):
    """What every worker of this run is given."""
    return {
        "config": str(args.config),
        # Random weights: timing does not need a checkpoint (a later -o may still set one).
        "overrides": ["MODEL.backbone.pretrained="] + list(args.override),
        "mode": mode,
        "batch_size": args.batch_size,
        "views": args.views,
        "threads": args.threads,
    }


def run_model_benchmark(args, mode, logger):
    """Interleave the contenders of ``mode`` ('infer' or 'train') for ``args.rounds`` rounds; the report of
    :func:`.report.build_report`."""
    from tqdm import tqdm

    ctx = mp.get_context("spawn")
    entries = select(mode, args.contenders)
    cfg = get_config(str(args.config), ["MODEL.backbone.pretrained="] + args.override, show=False)
    if mode == "train" and args.views != 1:
        raise SystemExit("--views applies to inference only (a training clip is one view)")
    per_clip = args.batch_size * args.views
    flops = flops_from_config(cfg.MODEL, train=(mode == "train")) * per_clip
    expected = expected_work(cfg, args.batch_size, args.views, train=(mode == "train"))
    # What the project's code runs (for the record; GFLOP/s and %peak use the nominal count, as for HF).
    executed = {"dygraph": flops_from_config(cfg.MODEL, train=(mode == "train"), executed=True) * per_clip,
                "exported": flops_from_config(cfg.MODEL, executed=True, temporal_fc_folded=True) * per_clip}

    workdir = tempfile.mkdtemp(prefix="tsf_bench_")
    try:
        contenders, ref_name = _start_contenders(ctx, args, mode, entries, workdir, logger)
        runnable = [c for c in contenders if not c.error]
        for _ in range(args.warmup):
            for contender in runnable:
                contender.run_once()
            for contender in runnable:
                contender.times.clear()
                contender.values.clear()
        with tqdm(total=args.rounds * len(runnable), desc=f"{mode} rounds", unit="run") as bar:
            for _ in range(args.rounds):
                for contender in runnable:
                    contender.run_once()
                    bar.update(1)
        diffs = compare_outputs(contenders, ref_name) if mode == "infer" else {}
        for contender in contenders:
            contender.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # weights and exported models of this run only
    report = build_report(contenders[0], contenders[1:], ref_name, flops, expected, diffs, mode)
    report["executed_flops_per_iter"] = executed if mode == "infer" else {"dygraph": executed["dygraph"]}
    report["low_precision_vs_fp32"] = low_precision_ratios(report["rows"])
    return report


def _start_contenders(ctx, args, mode, entries, workdir, logger):
    """Weights (and exports) first, each runner's own preparation, then every worker: ``([sgemm, ...], ref)``."""
    base = base_spec(args, mode)
    needs_export = any(entry.runner.needs_export for entry in entries)
    logger.info("preparing weights%s in %s", " and exported models" if needs_export else "", workdir)
    prepared = spawn_and_wait(ctx, prepare_worker, dict(base, weights=os.path.join(workdir, "weights.pdparams"),
                                                        export=needs_export, workdir=workdir))
    if "error" in prepared:
        raise SystemExit(f"cannot build the model from {args.config}: {prepared['error']}")
    exported = prepared.get("exported", {})
    if exported.get("onnx_error"):
        logger.warning("ONNX export failed: %s", exported["onnx_error"])

    specs = {}
    for entry in entries:
        spec = dict(base, runner=entry.runner, options=entry.options, weights=prepared["weights"],
                    overrides=base["overrides"] + entry.options.get("overrides", []),
                    default_env=entry.options.get("default_env", False), exported=exported)
        reason = entry.runner.unavailable(spec)
        if reason:
            logger.warning("contender %s skipped: %s", entry.name, reason)
            continue
        what = entry.runner.preparation(spec)
        if what:
            logger.info("%s for %s", what, entry.name)
            done = spawn_and_wait(ctx, runner_prepare_worker, spec)
            if "error" in done:
                logger.warning("contender %s: %s failed: %s", entry.name, what, done["error"])
        specs[entry.name] = spec
    contenders = [ContenderProcess(ctx, "sgemm", dict(base, runner=SgemmRunner))]
    contenders += [ContenderProcess(ctx, name, spec) for name, spec in specs.items()]
    for contender in contenders:
        contender.wait_ready()
    ref_name = next((entry.name for entry in entries if entry.ref), None)
    return contenders, ref_name
