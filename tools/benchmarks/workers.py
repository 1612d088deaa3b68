"""The worker processes (one per contender, started with ``spawn``) and the parent's handle on each.

A worker sets its environment, builds its runner, reports the resident memory and the work one iteration
computes, then answers ``run`` / ``output`` / ``stop``. The parent never imports paddle.
"""

import time
import traceback

from paddlevideo.common.logger import get_logger
from paddlevideo.runtime import configure_measuring_process

from .common import load_cfg, one_line, rss_mb

IDLE_BETWEEN_RUNS_S = 0.3


def setup_worker_process(spec):
    """The worker's process-wide settings: the project's CPU set-up from the worker (as main.py does), from
    build_model (``library``: as a user's script gets it) or not at all (``default_env``)."""
    options = spec.get("options") or {}
    cpu_setup = "none" if spec.get("default_env") else "library" if options.get("library") else "entry point"
    configure_measuring_process(spec["threads"], cpu_setup, options.get("env"))


def contender_worker(spec, conn):
    """Worker process: build ``spec['runner']``, send ``ready`` with its RSS and work, then serve commands."""
    setup_worker_process(spec)
    try:
        runner = spec["runner"](spec)
        setup_rss = rss_mb()[0]
        conn.send(("ready", setup_rss, runner.work()))
    except Exception as exc:  # report why this contender is unavailable, keep the others running
        conn.send(("error", one_line(exc), traceback.format_exc()))
        return
    while True:
        command = conn.recv()
        try:
            if command == "run":
                start = time.perf_counter()
                value = runner.run()
                elapsed = time.perf_counter() - start
                conn.send(("ok", elapsed, value if runner.measures_peak else None))
            elif command == "output":
                conn.send(("ok", runner.output()))
            elif command == "stop":
                conn.send(("ok", rss_mb()[1]))
                return
        except Exception as exc:
            conn.send(("error", one_line(exc), traceback.format_exc()))
            return


def prepare_worker(spec, conn):
    """Build the model once: save its weights (shared by all contenders) and export it when asked."""
    setup_worker_process(spec)
    result = {}
    try:
        import paddle

        from paddlevideo.modeling.builder import build_model

        from .exported import export_for_benchmark

        cfg = load_cfg(spec)
        paddle.seed(0)
        model = build_model(cfg.MODEL)
        model.eval()
        paddle.save(model.state_dict(), spec["weights"])
        result["weights"] = spec["weights"]
        if spec["export"]:
            result["exported"] = export_for_benchmark(cfg, spec)
    except Exception as exc:
        result["error"] = one_line(exc)
    conn.send(result)


def runner_prepare_worker(spec, conn):
    """``spec['runner'].prepare(spec)`` in a process of its own (e.g. int8 quantization)."""
    setup_worker_process(spec)
    try:
        conn.send(spec["runner"].prepare(spec) or {})
    except Exception as exc:
        conn.send({"error": one_line(exc)})


def spawn_and_wait(ctx, target, spec):
    """Run ``target(spec, conn)`` in a new process and return what it sends."""
    parent, child = ctx.Pipe()
    process = ctx.Process(target=target, args=(spec, child), daemon=True)
    process.start()
    child.close()
    try:
        result = parent.recv()
    except EOFError:
        result = {"error": f"worker died (exit code {process.exitcode})"}
    process.join()
    return result


class ContenderProcess:
    """A contender's worker process, its timings and the work it reported."""

    def __init__(self, ctx, name, spec):
        self.name = name
        self.spec = spec
        self.times = []
        self.values = []
        self.error = None
        self.setup_rss = None
        self.peak_rss = None
        self.work = None
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=contender_worker, args=(spec, child), daemon=True)
        self.process.start()
        child.close()

    def wait_ready(self):
        reply = self._recv()
        if reply[0] == "ready":
            self.setup_rss, self.work = reply[1], reply[2]
        else:
            self._fail(reply)

    def _recv(self):
        try:
            return self.conn.recv()
        except EOFError:
            return ("error", f"worker died (exit code {self.process.exitcode}; out of memory?)", "")

    def _fail(self, reply):
        self.error = reply[1]
        get_logger().warning("contender %s unavailable: %s", self.name, self.error)
        get_logger().debug("%s", reply[2] if len(reply) > 2 else "")

    def run_once(self):
        if self.error:
            return
        # The previous contender's OpenMP threads spin for up to ~200 ms after its run (KMP_BLOCKTIME);
        # let them go to sleep so they do not steal cycles from this one.
        time.sleep(IDLE_BETWEEN_RUNS_S)
        self.conn.send("run")
        reply = self._recv()
        if reply[0] != "ok":
            self._fail(reply)
            return
        self.times.append(reply[1])
        self.values.append(reply[2])

    def output(self):
        if self.error:
            return None
        self.conn.send("output")
        reply = self._recv()
        return reply[1] if reply[0] == "ok" else None

    def stop(self):
        if not self.error and self.process.is_alive():
            self.conn.send("stop")
            reply = self._recv()
            if reply[0] == "ok":
                self.peak_rss = reply[1]
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
