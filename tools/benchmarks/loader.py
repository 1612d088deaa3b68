"""``--mode loader``: the sampled test/train pipelines vs decoding whole clips (``tools/bench_loader.py``)."""

import importlib


def run_loader(config, rounds, threads):
    """Print and return the rows of :func:`bench_loader.run_loader_benchmark` (clips/s per pipeline)."""
    bench_loader = importlib.import_module("bench_loader")  # tools/bench_loader.py, beside tools/benchmark.py
    rows = bench_loader.run_loader_benchmark(str(config), rounds=rounds, threads=threads)
    print("\n== loader: clips/s per pipeline, sampled decoding vs decoding the whole clip")
    for row in rows:
        print("  ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return rows
