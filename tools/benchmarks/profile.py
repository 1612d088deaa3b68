"""``--profile``: where the time of one forward and of one training step goes, by op (``paddle.profiler``)."""

import contextlib
import io
import multiprocessing as mp
import time

from .common import one_line
from .dygraph import DygraphRunner
from .workers import setup_worker_process, spawn_and_wait


def profile_worker(spec, conn):
    """Profile one forward (no_grad) or one training step (``spec['mode']``) by op.

    One mode per process: Paddle 3.3 cannot start a second Profiler in the same process.
    """
    setup_worker_process(spec)
    try:
        import paddle.profiler as profiler

        runner = DygraphRunner(spec)
        runner.run()  # warm-up: first-call allocations and kernel selection
        # on_trace_ready does nothing: the default would write a trace folder into the working directory.
        prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], on_trace_ready=lambda _: None)
        prof.start()
        start = time.perf_counter()
        runner.run()
        elapsed = time.perf_counter() - start
        prof.step()
        prof.stop()
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            prof.summary(op_detail=False, thread_sep=False, time_unit="ms", sorted_by=profiler.SortedKeys.CPUTotal)
        conn.send({"wall_ms": elapsed * 1e3, "ops": operator_rows(text.getvalue())})
    except Exception as exc:
        conn.send({"error": one_line(exc)})


def operator_rows(summary_text):
    """Parse the 'Operator Summary' table of ``Profiler.summary`` into ``[(op, calls, total_ms)]``."""
    rows, inside = [], False
    for line in summary_text.splitlines():
        if "Operator Summary" in line:
            inside = True
            continue
        if not inside:
            continue
        parts = line.split()
        if len(parts) >= 4 and parts[1] in ("dygraph", "static", "compute") and parts[2].isdigit():
            name, calls, total = parts[0], int(parts[2]), parts[3]
        elif len(parts) >= 3 and parts[1].isdigit() and "/" in line:
            name, calls, total = parts[0], int(parts[1]), parts[2]
        else:
            if rows and line.startswith("---") and len(rows) > 3:
                break
            continue
        try:
            rows.append((name, calls, float(total)))
        except ValueError:
            continue
    return rows


def run_profile(base_spec, top, logger):
    """Print the top ``top`` ops of one forward and of one training step (share of summed op time)."""
    ctx = mp.get_context("spawn")
    results = {}
    for mode in ("infer", "train"):
        result = spawn_and_wait(ctx, profile_worker, dict(base_spec(mode), options={}))
        if "error" in result:
            logger.warning("profiling %s failed: %s", mode, result["error"])
            continue
        total = sum(r[2] for r in result["ops"]) or float("nan")
        print(f"\n== profile {mode}: one {'forward' if mode == 'infer' else 'training step'}, "
              f"{result['wall_ms']:.0f} ms wall; top ops by total CPU time (share of summed op time)")
        for name, calls, ms in result["ops"][:top]:
            print(f"{name:<40} {calls:>6} calls {ms:>10.1f} ms {100 * ms / total:>5.1f}%")
        results[mode] = result
    return results
