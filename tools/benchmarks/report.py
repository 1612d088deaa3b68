"""The table of a model benchmark, and the checks that keep it honest.

A row is refused (shown with the reason instead of numbers that would mislead; its timings stay in the JSON)
when its contender did other work than the command asks (fewer clips, other frames or size: its runner's
``work()``), or when an fp32 row claims more GFLOP/s than the machine's fp32 sgemm peak measured in the same
run (its work or its timing is wrong, or the peak itself was measured while the machine was busy: either
way the row's ratio to the peak is not true). Low-precision rows (bf16, int8) may pass the fp32 peak.
"""

import statistics

from .contenders import CONTENDERS


def describe_work(work):
    """``'3 clips x 8 frames x 224 px, forward'`` for a work record."""
    if not work:
        return "nothing"
    kind = "training step" if work["train"] else "forward"
    return f"{work['clips']} clips x {work['frames']} frames x {work['size']} px, {kind}"


def work_problem(work, expected):
    """Why ``work`` (what a runner did per iteration) is not ``expected``, or None when it is the same."""
    if work == expected:
        return None
    return (f"did other work than asked: {describe_work(work)} per iteration instead of {describe_work(expected)}; "
            "its time is not comparable")


def precision(name):
    entry = CONTENDERS.get(name)
    return entry.options.get("precision", "fp32") if entry else "fp32"


def is_fp32_project_path(name):
    """An fp32 path of the project (not another library, not a ceiling, not bf16/int8)."""
    entry = CONTENDERS.get(name)
    return precision(name) == "fp32" and (entry is None or entry.options.get("project", True))


def compare_outputs(contenders, ref_name):
    """Max |output - reference output| for contenders that share the reference weights."""
    import numpy as np

    by_name = {c.name: c for c in contenders}
    if ref_name is None or by_name.get(ref_name) is None:
        return {}
    ref = by_name[ref_name].output()
    if ref is None:
        return {}
    diffs = {}
    for contender in contenders:
        if contender.name in ("sgemm", ref_name):
            continue
        out = contender.output()
        if out is not None:
            diffs[contender.name] = float(np.max(np.abs(np.asarray(out) - ref)))
    return diffs


def build_report(sgemm, contenders, ref_name, flops, expected, diffs, mode):
    """The report of one mode: the sgemm peak and one row per contender (timed, refused or unavailable)."""
    peak = max(sgemm.values) if sgemm.values else float("nan")
    ref = next((c for c in contenders if c.name == ref_name and c.times and not work_problem(c.work, expected)),
               None)
    ref_median = statistics.median(ref.times) if ref else None
    ref_min = min(ref.times) if ref else None
    rows = []
    for contender in contenders:
        if contender.error or not contender.times:
            rows.append({"name": contender.name, "error": contender.error or "no timings"})
            continue
        median, best = statistics.median(contender.times), min(contender.times)
        row = {
            "name": contender.name,
            "work": contender.work,
            "precision": precision(contender.name),
            "median_ms": median * 1e3,
            "min_ms": best * 1e3,
            "speedup_vs_ref": (ref_median / median) if ref_median else None,
            "speedup_vs_ref_min": (ref_min / best) if ref_min else None,
            "gflops": flops / median / 1e9,
            "pct_peak": 100 * flops / median / 1e9 / peak,
            "pct_peak_best": 100 * flops / best / 1e9 / peak,
            "setup_rss_mb": contender.setup_rss,
            "peak_rss_mb": contender.peak_rss,
            "max_abs_diff_vs_ref": diffs.get(contender.name),
            "times_ms": [t * 1e3 for t in contender.times],
        }
        refused = work_problem(contender.work, expected)
        if refused is None and row["precision"] == "fp32" and row["pct_peak"] > 100:
            refused = (f"{row['pct_peak']:.0f}% of the fp32 sgemm peak measured in this run, which no fp32 code "
                       "can pass: its work or its timing is wrong, or the peak was measured on a busy machine "
                       "(see the sgemm per round; more --rounds)")
        if refused:
            row["refused"] = refused
        rows.append(row)
    return {
        "mode": mode,
        "reference": ref.name if ref else None,
        "flops_per_iter": flops,
        "work_per_iter": expected,
        "sgemm_peak_gflops": peak,
        "sgemm_gflops_per_round": sgemm.values,
        "rows": rows,
    }


def low_precision_ratios(rows):
    """``{'fp32': fastest fp32 contender, 'speedup': {bf16/int8 contender: its median speed-up}}``, or None.
    Refused rows take no part."""
    timed = {row["name"]: row["median_ms"] for row in rows if "error" not in row and "refused" not in row}
    fp32 = {name: ms for name, ms in timed.items() if is_fp32_project_path(name)}
    low = {name: ms for name, ms in timed.items() if precision(name) in ("bf16", "int8")}
    if not fp32 or not low:
        return None
    best = min(fp32, key=fp32.get)
    return {"fp32": best, "speedup": {name: fp32[best] / ms for name, ms in low.items()}}


def _ratio(value):
    """A speed-up column: blank without a reference row."""
    return f"{'':>6}" if value is None else f"{value:>6.2f}"


def print_model_report(report):
    mode = report["mode"]
    print(f"\n== {mode}: {report['flops_per_iter'] / 1e9:.1f} GFLOP per iteration "
          f"({describe_work(report['work_per_iter'])}, checked for every row); "
          f"sgemm peak {report['sgemm_peak_gflops']:.1f} GFLOP/s (per round: "
          f"{', '.join(f'{v:.0f}' for v in report['sgemm_gflops_per_round'])}); "
          + (f"speed-up vs {report['reference']}: 'x ref' of medians, 'x(min)' of minimums" if report["reference"]
             else "no reference row among the contenders: 'x ref' and 'x(min)' left blank"))
    executed = report.get("executed_flops_per_iter") or {}
    if executed:
        print("   GFLOP/s and %peak count the model's nominal FLOPs; the project's code executes "
              + ", ".join(f"{value / 1e9:.1f} ({name})" for name, value in executed.items())
              + " (CLS-only last block; the export also merges temporal_fc)")
    header = (f"{'contender':<22} {'median ms':>10} {'min ms':>10} {'x ref':>6} {'x(min)':>6} {'GFLOP/s':>8} "
              f"{'%peak':>6} {'%peak(min)':>10} {'RSS setup':>9} {'RSS peak':>9} {'max|diff|':>9}")
    print(header)
    print("-" * len(header))
    for row in report["rows"]:
        if "error" in row:
            print(f"{row['name']:<22} unavailable: {row['error']}")
            continue
        if "refused" in row:
            print(f"{row['name']:<22} REFUSED ({row['median_ms']:.0f} ms median): {row['refused']}")
            continue
        diff = row["max_abs_diff_vs_ref"]
        low = "*" if row["precision"] != "fp32" else " "
        print(f"{row['name']:<22} {row['median_ms']:>10.0f} {row['min_ms']:>10.0f} "
              f"{_ratio(row['speedup_vs_ref'])} {_ratio(row['speedup_vs_ref_min'])} "
              f"{row['gflops']:>8.1f} {row['pct_peak']:>5.0f}%{low}"
              f"{row['pct_peak_best']:>9.0f}% {row['setup_rss_mb'] or 0:>7.0f}MB {row['peak_rss_mb'] or 0:>7.0f}MB "
              f"{'' if diff is None else f'{diff:.1e}':>9}")
    if any(row.get("precision", "fp32") != "fp32" for row in report["rows"] if "error" not in row):
        print("   * bf16 / int8: %peak is against the fp32 sgemm, so it may pass 100%")
    ratios = low_precision_ratios(report["rows"])
    if ratios:
        print(f"   vs the fastest fp32 path ({ratios['fp32']}, median): "
              + ", ".join(f"{name} {value:.2f}x" for name, value in ratios["speedup"].items()))
