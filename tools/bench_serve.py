#!/usr/bin/env python
"""Measure tools/serve.py under load against the model alone, on this machine.

Three numbers for one exported model, backend and batch size:

1. **model only**: the predictor on ``--max_batch`` copies of the clip, back to back (clips/s), in a child
   process of its own;
2. **offline**: decode + model, one batch after another, as ``tools/predict.py --batch_size`` runs (clips/s);
3. **service**: ``tools/serve.py`` started with the same model and ``--max_batch`` / ``--max_wait_ms``, and
   ``--clients`` concurrent HTTP clients posting ``--video`` until ``--requests`` answers: clips/s, the
   latency each client saw (p50 / p95 / max), the mean batch the service formed (from its /metrics).

The service decodes every upload itself and answers over HTTP on the same cores, so for a model that needs
about as much CPU per clip as serving one (the tiny demo model) the service cannot reach the model alone:
docs/serving.md (section 4) has where the time goes.

Examples::

    python tools/bench_serve.py -c configs/recognition/timesformer/timesformer_demo_videos.yaml \\
        --model_file inference/TimeSformer_demo/TimeSformer_demo.pdmodel --video data/demo/val/000001.avi
    python tools/bench_serve.py -c configs/recognition/timesformer/timesformer_k400_videos.yaml \\
        --model_file inference/TimeSformer/TimeSformer.pdmodel --backend openvino --precision int8 \\
        --video data/example.avi --max_batch 2 --clients 4 --requests 40 --json serve_vitb_int8.json
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("bench_serve.py", __name__)
import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.common.errors import InputError, RunError  # noqa: E402

PROG = "bench_serve.py"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # serve.py is started from the clone
START_TIMEOUT_S = 300
SERVING_LINE = re.compile(r"serve\.py: serving .* on http://(?P<host>[^ ]+):(?P<port>\d+)/")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-c", "--config", required=True, help="the model's config (its PIPELINE.test)")
    parser.add_argument("--model_file", required=True, help="the exported model")
    parser.add_argument("--params_file", default=None, help="its .pdiparams (default: next to the model)")
    parser.add_argument("--backend", default=None, help="as tools/serve.py (default: from the model file)")
    parser.add_argument("--precision", default="fp32", help="as tools/serve.py")
    parser.add_argument("--video", required=True, help="the clip every request posts")
    parser.add_argument("--max_batch", type=int, default=4, help="the batch size of all three measurements")
    parser.add_argument("--max_wait_ms", type=float, default=10.0, help="the service's batching wait")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--requests", type=int, default=200, help="answers to time in the service run")
    parser.add_argument("--warmup", type=int, default=8, help="untimed requests first")
    parser.add_argument("--model_seconds", type=float, default=10.0,
                        help="how long the model-only and offline loops run (at least 3 batches each)")
    parser.add_argument("--cpu_threads", type=int, default=None,
                        help="CPU math threads of all three (default: all cores for model only and offline; the "
                             "service's own choice, docs/serving.md section 4)")
    parser.add_argument("--model_process", choices=("auto", "on", "off"), default="auto",
                        help="the service's --model_process (off: the model in the service's process, as before)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    for name in ("max_batch", "clients", "requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return args


# ------------------------------------------------------------------ model only and offline (child process)

def _model_worker(spec, conn):
    """In a fresh process: (model-only clips/s, offline decode+model clips/s)."""
    try:
        import numpy as np

        from paddlevideo.deploy.predictor import build_predictor, default_backend, resolve_cpu_precision
        from paddlevideo.loader.builder import build_pipeline
        from paddlevideo.config import get_config
        from paddlevideo.runtime import configure_cpu

        configure_cpu(spec["cpu_threads"])
        cfg = get_config(spec["config"], [], show=False)
        pipeline = build_pipeline(cfg.PIPELINE.test, "PIPELINE.test")
        backend = spec["backend"] or default_backend(spec["model_file"], spec["precision"])
        precision, _ = resolve_cpu_precision(backend, spec["precision"])
        predictor = build_predictor(spec["model_file"], backend, precision, params_file=spec["params_file"],
                                    cpu_threads=spec["cpu_threads"])
        size = spec["max_batch"]
        batch = np.stack([pipeline({"filename": spec["video"]})["imgs"]] * size)
        for _ in range(2):
            predictor(batch)

        def loop(step):
            calls, start = 0, time.perf_counter()
            while calls < 3 or time.perf_counter() - start < spec["seconds"]:
                step()
                calls += 1
            return calls * size / (time.perf_counter() - start)

        model_only = loop(lambda: predictor(batch))
        offline = loop(lambda: predictor(np.stack([pipeline({"filename": spec["video"]})["imgs"]
                                                   for _ in range(size)])))
        conn.send({"model_only": model_only, "offline": offline, "backend": backend, "precision": precision})
    except BaseException as err:  # noqa: BLE001 - reported by the parent as one line
        from paddlevideo.common.errors import first_line

        conn.send({"error": f"{type(err).__name__}: {first_line(err)}"})
    finally:
        conn.close()


def measure_model(args):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    spec = {"config": args.config, "model_file": args.model_file, "params_file": args.params_file,
            "backend": args.backend, "precision": args.precision, "video": args.video,
            "max_batch": args.max_batch, "seconds": args.model_seconds, "cpu_threads": args.cpu_threads}
    proc = ctx.Process(target=_model_worker, args=(spec, child), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(START_TIMEOUT_S + 10 * args.model_seconds):
            raise RunError("the model-only measurement gave no result in time")
        result = parent.recv()
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    if "error" in result:
        raise RunError(f"model-only measurement failed: {result['error']}")
    return result


# ------------------------------------------------------------------ the service

def _post(host, port, body, content_type, timeout=600):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/predict?top_k=1", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _get(host, port, path):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def measure_service(args, backend, log_path):
    cmd = [sys.executable, os.path.join(REPO, "tools", "serve.py"), "-c", args.config, "--model_file",
           args.model_file, "--backend", backend, "--precision", args.precision, "--port", "0",
           "--max_batch", str(args.max_batch), "--max_wait_ms", str(args.max_wait_ms),
           "--queue_size", str(max(32, 2 * args.clients)), "--timeout_s", "600", "--no_access_log",
           "--model_process", args.model_process]
    if args.params_file:
        cmd += ["--params_file", args.params_file]
    if args.cpu_threads:
        cmd += ["--cpu_threads", str(args.cpu_threads)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    try:
        host, port = _wait_ready(proc, log_path)
        with open(args.video, "rb") as f:
            video = f.read()
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{os.path.basename(args.video)}\""
                "\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + video + f"\r\n--{boundary}--\r\n".encode()
        kind = f"multipart/form-data; boundary={boundary}"
        for _ in range(args.warmup):
            status, reply = _post(host, port, body, kind)
            if status != 200:
                raise RunError(f"the service answered {status} to a warm-up request: {reply[:300]!r}")
        before = _get(host, port, "/metrics")[1].decode()
        latencies, failures, lock = [], [], threading.Lock()
        remaining = [args.requests]

        def client():
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                start = time.perf_counter()
                status, reply = _post(host, port, body, kind)
                with lock:
                    (latencies if status == 200 else failures).append(
                        time.perf_counter() - start if status == 200 else (status, reply[:200]))

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        after = _get(host, port, "/metrics")[1].decode()
        if failures:
            raise RunError(f"{len(failures)} of {args.requests} requests failed, e.g. {failures[0]}")
        batches = _metric_sum(after, "paddlevideo_batch_size_count") - _metric_sum(before, "paddlevideo_batch_size_count")
        clips = _metric_sum(after, "paddlevideo_batch_size_sum") - _metric_sum(before, "paddlevideo_batch_size_sum")
        latencies.sort()
        pick = lambda q: latencies[min(len(latencies) - 1, int(round(q * (len(latencies) - 1))))]  # noqa: E731
        return {"throughput": args.requests / wall, "p50_ms": 1000 * pick(0.5), "p95_ms": 1000 * pick(0.95),
                "max_ms": 1000 * latencies[-1], "mean_batch": clips / batches if batches else 0.0,
                "wall_s": wall}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc, log_path):
    deadline = time.monotonic() + START_TIMEOUT_S
    address = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path) as f:
                tail = f.read()[-1500:]
            raise RunError(f"tools/serve.py exited with {proc.returncode}: {tail.strip().splitlines()[-1:]}")
        if address is None:
            with open(log_path) as f:
                found = SERVING_LINE.search(f.read())
            address = (found["host"], int(found["port"])) if found else None
        if address is not None:
            try:
                if _get(*address, "/health")[0] == 200:
                    return address
            except OSError:
                pass
        time.sleep(0.2)
    raise RunError(f"tools/serve.py was not ready within {START_TIMEOUT_S} s (its log: {log_path})")


def main(argv=None):
    args = parse_args(argv)
    for flag, path in (("--config", args.config), ("--model_file", args.model_file), ("--video", args.video)):
        if not os.path.isfile(path):
            raise InputError(f"{flag} '{path}' not found")
    print(f"{PROG}: model only and offline, batch {args.max_batch} ...", file=sys.stderr, flush=True)
    model = measure_model(args)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        print(f"{PROG}: service, {args.clients} clients x {args.requests} requests ...", file=sys.stderr, flush=True)
        service = measure_service(args, model["backend"], os.path.join(folder, "serve.log"))
    result = {"model_file": args.model_file, "backend": model["backend"], "precision": model["precision"],
              "video": args.video, "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms,
              "clients": args.clients, "requests": args.requests, "model_process": args.model_process,
              "model_only_clips_per_s": model["model_only"],
              "offline_clips_per_s": model["offline"], "service_clips_per_s": service["throughput"],
              "service_vs_model_only": service["throughput"] / model["model_only"],
              "service_vs_offline": service["throughput"] / model["offline"], **service}
    print(f"| {os.path.basename(args.model_file)} {model['backend']} {model['precision']} | batch {args.max_batch} | "
          f"model only {model['model_only']:.2f} clips/s | offline {model['offline']:.2f} | service "
          f"{service['throughput']:.2f} ({100 * result['service_vs_model_only']:.0f} % of model only, "
          f"{100 * result['service_vs_offline']:.0f} % of offline) | p50 {service['p50_ms']:.0f} ms | p95 "
          f"{service['p95_ms']:.0f} ms | mean batch {service['mean_batch']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
