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

Output: one table per mode (median and min ms, ratio to the reference contender, GFLOP/s from the
analytic FLOP count, % of the sgemm peak, peak RSS), optionally written as JSON (``--json``).
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("benchmark.py", __name__)
import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

# Only light imports here: worker processes start with "spawn" and import this module again, and the
# parent must not start an OpenMP runtime of its own (its spinning threads would steal cycles).

from paddlevideo.utils import ConfigError, get_config, get_logger, setup_logger  # noqa: E402
from paddlevideo.utils.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.utils.cpu import CONFIGURE_CPU_SWITCH, configure_cpu, cpu_model_name, cpu_vendor  # noqa: E402
from paddlevideo.utils.cpu_features import isa_summary  # noqa: E402
from paddlevideo.utils.flops import flops_from_config, shape_from_config, timesformer_matmuls  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_k400_videos.yaml"
MODES = ("infer", "train", "loader")
SGEMM_SIZE = 2048  # large enough to reach the BLAS peak, small enough to run in ~0.1 s
IDLE_BETWEEN_RUNS_S = 0.3
CALIB_CLIPS = 4  # random calibration clips for the openvino_int8 contender
# Rows of the tables: contender name -> (kind, options). "ref" marks the ratio baseline.
# "default_env": no CPU set-up in the worker (no AMD MKL variable, no malloc tuning, Paddle's strided views
# on: PADDLEVIDEO_CONFIGURE_CPU=0), and the model switched to Paddle's own Linear, LayerNorm, GELU and softmax
# (kernels: paddle) with a full last block (cls_only_last_block: False): none of the project's CPU paths, i.e.
# a straightforward Paddle implementation; with plain attention it is the reference row.
# "library": the worker does not call configure_cpu() itself, as a user's script that only imports paddlevideo
# and calls build_model (which applies the set-up to the first model); to compare with "dygraph" (main.py's).
PLAIN = ["MODEL.backbone.attention_impl=plain"]
PADDLE_OPS = ["MODEL.backbone.kernels=paddle"]
STRAIGHTFORWARD = PLAIN + PADDLE_OPS + ["MODEL.backbone.cls_only_last_block=False"]
INFER_CONTENDERS = {
    "dygraph_default_env": ("dygraph", {"overrides": STRAIGHTFORWARD, "default_env": True, "ref": True}),
    "dygraph_plain": ("dygraph", {"overrides": PLAIN}),
    "dygraph": ("dygraph", {"overrides": []}),
    "dygraph_library": ("dygraph", {"library": True}),
    "dygraph_paddle_kernels": ("dygraph", {"overrides": PADDLE_OPS}),
    "paddle_inference": ("paddle_inference", {"onednn": True}),  # tools/predict.py's default
    "paddle_inference_pir": ("paddle_inference", {"onednn": True, "format": "pir"}),
    "paddle_inference_mkl": ("paddle_inference", {"onednn": False}),
    "onnxruntime": ("onnxruntime", {}),
    # OpenVINO on the .pdmodel export (tools/predict.py --backend openvino --precision ...); int8 is the model
    # tools/quantize.py would write, calibrated here on random clips (timing does not depend on the ranges).
    "openvino_fp32": ("openvino", {"precision": "fp32"}),
    "openvino_bf16": ("openvino", {"precision": "bf16"}),
    "openvino_int8": ("openvino", {"precision": "int8"}),
    "hf_torch": ("hf_torch", {}),
    # Not a model: only its matrix products (a ceiling, see MatmulsRunner).
    "matmuls_only": ("matmuls", {}),
}
TRAIN_CONTENDERS = {
    "dygraph_default_env": ("dygraph", {"overrides": STRAIGHTFORWARD, "default_env": True, "ref": True}),
    "dygraph_plain": ("dygraph", {"overrides": PLAIN}),
    "dygraph": ("dygraph", {"overrides": []}),
    "dygraph_recompute": ("dygraph", {"overrides": ["MODEL.backbone.recompute=True"]}),
    "dygraph_library": ("dygraph", {"library": True}),
    # A/B of the project's CPU paths (paddlevideo/modeling/layers/fast_ops.py): Paddle's ops instead.
    "dygraph_paddle_kernels": ("dygraph", {"overrides": PADDLE_OPS}),
    "hf_torch": ("hf_torch", {}),
}


# --------------------------------------------------------------------------------------------------
# Worker side: runs in a fresh process; imports paddle / onnxruntime / torch only here.
# --------------------------------------------------------------------------------------------------

def _rss_mb():
    """(current RSS, peak RSS) of this process in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    current_mb = peak_mb
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    current_mb = int(line.split()[1]) / 1024
    except OSError:
        pass
    return current_mb, peak_mb


def _load_cfg(spec):
    return get_config(spec["config"], spec["overrides"], show=False)


def _inputs(spec, cfg):
    """Deterministic input clip ``[B, 3, V*T, H, W]`` and labels ``[B, 1]`` (numpy), same in every worker."""
    import numpy as np

    backbone = cfg.MODEL.backbone
    rng = np.random.RandomState(0)
    frames = backbone.num_seg * spec["views"]
    size = backbone.img_size
    imgs = rng.standard_normal((spec["batch_size"], 3, frames, size, size)).astype("float32")
    labels = rng.randint(0, cfg.MODEL.head.num_classes, size=(spec["batch_size"], 1)).astype("int64")
    return imgs, labels


class SgemmRunner:
    """Best-of-5 ``paddle.matmul`` of two ``[n, n]`` fp32 matrices; ``run`` returns GFLOP/s."""

    def __init__(self, spec):
        import paddle

        self.paddle = paddle
        n = spec.get("sgemm_size", SGEMM_SIZE)
        self.flops = 2.0 * n ** 3
        self.a = paddle.randn([n, n], dtype="float32")
        self.b = paddle.randn([n, n], dtype="float32")
        paddle.matmul(self.a, self.b)

    def run(self):
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            self.paddle.matmul(self.a, self.b)
            best = min(best, time.perf_counter() - start)
        return self.flops / best / 1e9

    def output(self):
        return None


class DygraphRunner:
    """The project's model in Paddle dygraph: ``model([x], mode='infer')`` or one optimizer step."""

    def __init__(self, spec):
        import numpy as np
        import paddle

        from paddlevideo.modeling.builder import build_model
        from paddlevideo.solver.optimizer import build_optimizer

        self.paddle = paddle
        cfg = _load_cfg(spec)
        paddle.seed(0)
        self.model = build_model(cfg.MODEL)
        if spec.get("weights"):
            self.model.set_state_dict(paddle.load(spec["weights"]))
        imgs, labels = _inputs(spec, cfg)
        self.x = paddle.to_tensor(imgs)
        self.y = paddle.to_tensor(labels)
        self.train = spec["mode"] == "train"
        if self.train:
            self.model.train()
            self.opt, _ = build_optimizer(cfg.OPTIMIZER, self.model, updates_per_epoch=1000,
                                          epochs=cfg.get("epochs", 1))
        else:
            self.model.eval()
        self.np = np

    def run(self):
        if self.train:
            out = self.model([self.x, self.y], mode="train")
            out["loss"].backward()
            self.opt.step()
            self.opt.clear_grad()
            return float(out["loss"])
        with self.paddle.no_grad():
            return self.model([self.x], mode="infer").numpy()

    def output(self):
        return None if self.train else self.run()


class ExportedRunner:
    """An exported model through ``tools/predict.py``'s predictors: Paddle Inference (oneDNN on or off,
    ``.pdmodel`` or PIR) or ONNX Runtime (CPU provider)."""

    def __init__(self, spec):
        from paddlevideo.deploy.backends.onnx_runtime import OnnxPredictor
        from paddlevideo.deploy.backends.paddle_inference import PaddlePredictor

        cfg = _load_cfg(spec)
        options, exported = spec["options"], spec["exported"]
        if spec["kind"] == "onnxruntime":
            self.predictor = OnnxPredictor(exported["onnx"], cpu_threads=spec["threads"])
        else:
            model_file = exported["pir" if options.get("format") == "pir" else "pdmodel"]
            self.predictor = PaddlePredictor(model_file, enable_mkldnn=bool(options.get("onednn")),
                                             cpu_threads=spec["threads"])
        self.x, _ = _inputs(spec, cfg)

    def run(self):
        return self.predictor(self.x)

    output = run


class OpenVINORunner:
    """The ``.pdmodel`` export on OpenVINO (``tools/predict.py --backend openvino``) in fp32, bf16 or int8.
    bf16 on a CPU without bf16 hardware is reported unavailable (predict.py would run fp32 instead)."""

    def __init__(self, spec):
        from paddlevideo.deploy.backends.openvino_runtime import OpenVINOPredictor
        from paddlevideo.deploy.predictor import resolve_cpu_precision

        precision, note = resolve_cpu_precision("openvino", spec["options"]["precision"])
        if precision != spec["options"]["precision"]:
            raise RuntimeError(note)
        cfg = _load_cfg(spec)
        self.predictor = OpenVINOPredictor(spec["exported"]["pdmodel"], precision, cpu_threads=spec["threads"])
        self.x, _ = _inputs(spec, cfg)

    def run(self):
        return self.predictor(self.x)

    output = run


class HFTorchRunner:
    """HF transformers' TimesformerForVideoClassification (random weights, same shape), PyTorch eager."""

    def __init__(self, spec):
        import torch
        from transformers import TimesformerConfig, TimesformerForVideoClassification

        cfg = _load_cfg(spec)
        backbone = cfg.MODEL.backbone
        torch.set_num_threads(spec["threads"])
        torch.manual_seed(0)
        hf_cfg = TimesformerConfig(
            image_size=backbone.img_size, patch_size=backbone.patch_size, num_channels=backbone.in_channels,
            num_frames=backbone.num_seg, hidden_size=backbone.embed_dim, num_hidden_layers=backbone.depth,
            num_attention_heads=backbone.num_heads, intermediate_size=int(backbone.embed_dim * backbone.mlp_ratio),
            qkv_bias=backbone.get("qkv_bias", True), layer_norm_eps=backbone.get("epsilon", 1e-6),
            attention_type=backbone.attention_type, num_labels=cfg.MODEL.head.num_classes,
        )  # HF's default drop_path_rate is 0 (and its config rejects a float 0.0)
        self.torch = torch
        self.model = TimesformerForVideoClassification(hf_cfg)
        imgs, labels = _inputs(dict(spec, views=1), cfg)
        # HF takes [B, T, C, H, W].
        self.x = torch.from_numpy(imgs).permute(0, 2, 1, 3, 4).contiguous()
        self.y = torch.from_numpy(labels[:, 0])
        self.train = spec["mode"] == "train"
        if self.train:
            self.model.train()
            self.opt = torch.optim.SGD(self.model.parameters(), lr=0.005, momentum=0.9, nesterov=True,
                                       weight_decay=1e-4)
        else:
            self.model.eval()

    def run(self):
        if self.train:
            loss = self.model(pixel_values=self.x, labels=self.y).loss
            loss.backward()
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            return float(loss.detach())
        with self.torch.inference_mode():
            return self.model(pixel_values=self.x).logits.numpy()

    def output(self):
        return None  # different (random) weights: not comparable


class MatmulsRunner:
    """Only the model's matrix products, with ``paddle.matmul`` on ready inputs: no element-wise work.

    The products are :func:`timesformer_matmuls` (same shapes and count, so the same analytic FLOPs
    as the model) for ``batch_size * views`` clips. Its time is what a perfect fusion of every
    element-wise op would leave with Paddle's BLAS, so its ``%peak`` bounds any implementation that
    runs its GEMMs through the same library.
    """

    def __init__(self, spec):
        import paddle

        cfg = _load_cfg(spec)
        clips = spec["batch_size"] * spec["views"]
        self.matmul = paddle.matmul
        self.operands = {}
        self.sequence = []
        for _, batch, m, k, n in timesformer_matmuls(**shape_from_config(cfg.MODEL)):
            # More clips mean more rows of a token-wise product, or more independent attention groups.
            key = (batch * clips, m, k, n) if batch > 1 else (1, m * clips, k, n)
            if key not in self.operands:
                lead = [key[0]] if key[0] > 1 else []
                self.operands[key] = (paddle.randn(lead + [key[1], k]), paddle.randn(lead + [k, n]))
            self.sequence.append(self.operands[key])

    def run(self):
        for a, b in self.sequence:
            self.matmul(a, b)

    def output(self):
        return None


RUNNERS = {
    "sgemm": SgemmRunner,
    "matmuls": MatmulsRunner,
    "dygraph": DygraphRunner,
    "paddle_inference": ExportedRunner,
    "onnxruntime": ExportedRunner,
    "openvino": OpenVINORunner,
    "hf_torch": HFTorchRunner,
}


def _setup_worker_env(spec):
    """Threads for every worker; the project's CPU set-up from the worker (as main.py does), from build_model
    (``library``: as a user's script gets it) or not at all (the default environment)."""
    os.environ["OMP_NUM_THREADS"] = str(spec["threads"])
    if spec.get("default_env"):
        os.environ[CONFIGURE_CPU_SWITCH] = "0"  # building the model leaves Paddle's defaults alone
    elif not (spec.get("options") or {}).get("library"):
        configure_cpu(threads=spec["threads"])
    os.environ.update((spec.get("options") or {}).get("env", {}))


def _worker(spec, conn):
    """Worker process: set the environment, build the runner, then answer 'run'/'output'/'stop'."""
    _setup_worker_env(spec)
    os.environ.setdefault("GLOG_minloglevel", "2")  # keep Paddle's C++ INFO lines out of the table
    try:
        runner = RUNNERS[spec["kind"]](spec)
        conn.send(("ready", _rss_mb()[0]))
    except Exception as exc:  # report why this contender is unavailable, keep the others running
        conn.send(("error", f"{type(exc).__name__}: {exc}".splitlines()[0][:300], traceback.format_exc()))
        return
    while True:
        command = conn.recv()
        try:
            if command == "run":
                start = time.perf_counter()
                value = runner.run()
                elapsed = time.perf_counter() - start
                conn.send(("ok", elapsed, value if spec["kind"] == "sgemm" else None))
            elif command == "output":
                conn.send(("ok", runner.output()))
            elif command == "stop":
                conn.send(("ok", _rss_mb()[1]))
                return
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}".splitlines()[0][:300], traceback.format_exc()))
            return


def _prepare_worker(spec, conn):
    """Build the model once: save its weights (shared by all contenders) and export it for deployment."""
    _setup_worker_env(spec)
    os.environ.setdefault("GLOG_minloglevel", "2")
    result = {}
    try:
        import paddle

        from paddlevideo.modeling.builder import build_model

        cfg = _load_cfg(spec)
        paddle.seed(0)
        model = build_model(cfg.MODEL)
        model.eval()
        paddle.save(model.state_dict(), spec["weights"])
        result["weights"] = spec["weights"]
        if spec["export"]:
            result["exported"] = _export(cfg, spec)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    conn.send(result)


def _export(cfg, spec):
    """The exports users get (``tools/export_model.py``: plain attention, one feed), for ``views`` views:
    ``.pdmodel`` (the default) and the PIR ``.json`` with its ONNX conversion."""
    from paddlevideo.deploy.export import export_model

    # The benchmark's input is the backbone's own clip (overrides may change it), whatever INFERENCE says.
    backbone = cfg.MODEL.backbone
    cfg.INFERENCE = dict(cfg.get("INFERENCE") or {}, num_seg=backbone.num_seg, target_size=backbone.img_size)
    folder = {fmt: os.path.join(spec["workdir"], fmt) for fmt in ("pdmodel", "pir")}
    result = {"pdmodel": export_model(cfg, spec["weights"], folder["pdmodel"], num_views=spec["views"])["model"]}
    try:
        written = export_model(cfg, spec["weights"], folder["pir"], fmt="pir", onnx=True, num_views=spec["views"])
        result["onnx"] = written["onnx"]
    except Exception as exc:  # an ONNX conversion problem must not hide the Paddle exports
        result["onnx_error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        written = export_model(cfg, spec["weights"], folder["pir"], fmt="pir", num_views=spec["views"])
    result["pir"] = written["model"]
    return result


def _quantize_worker(spec, conn):
    """Write ``<model>.int8.xml`` next to the ``.pdmodel`` export (NNCF, as tools/quantize.py), calibrated on
    ``CALIB_CLIPS`` random clips: in its own process, so no contender's peak RSS includes quantization."""
    _setup_worker_env(spec)
    try:
        import numpy as np
        import openvino as ov

        from paddlevideo.deploy.backends.openvino_runtime import int8_model_path
        from paddlevideo.deploy.provenance import companion_files
        from paddlevideo.deploy.quantize import quantize_ov_model, save_int8

        model_file = spec["exported"]["pdmodel"]
        cfg = _load_cfg(spec)
        shape = _inputs(dict(spec, batch_size=1), cfg)[0].shape
        clips = [np.random.RandomState(seed).standard_normal(shape).astype("float32") for seed in range(CALIB_CLIPS)]
        quantized, _ = quantize_ov_model(ov.Core().read_model(model_file), clips, CALIB_CLIPS)
        save_int8(ov, quantized, int8_model_path(model_file), companion_files(model_file))
        conn.send({"int8": int8_model_path(model_file)})
    except Exception as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]})


def _profile_worker(spec, conn):
    """Profile one forward (no_grad) or one training step (``spec['mode']``) by op with ``paddle.profiler``.

    One mode per process: Paddle 3.3 cannot start a second Profiler in the same process.
    """
    _setup_worker_env(spec)
    os.environ.setdefault("GLOG_minloglevel", "2")
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
        conn.send({"wall_ms": elapsed * 1e3, "ops": _operator_rows(text.getvalue())})
    except Exception as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]})


def _operator_rows(summary_text):
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


# --------------------------------------------------------------------------------------------------
# Parent side: no paddle import.
# --------------------------------------------------------------------------------------------------

class Contender:
    """A worker process and its timings."""

    def __init__(self, ctx, name, spec):
        self.name = name
        self.spec = spec
        self.times = []
        self.values = []
        self.error = None
        self.setup_rss = None
        self.peak_rss = None
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(spec, child), daemon=True)
        self.process.start()
        child.close()

    def wait_ready(self):
        reply = self._recv()
        if reply[0] == "ready":
            self.setup_rss = reply[1]
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


def _spawn_and_wait(ctx, target, spec):
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


def _base_spec(args, mode):
    return {
        "config": str(args.config),
        # Random weights: timing does not need a checkpoint (a later -o may still set one).
        "overrides": ["MODEL.backbone.pretrained="] + list(args.override),
        "mode": mode,
        "batch_size": args.batch_size,
        "views": args.views,
        "threads": args.threads,
    }


def _select(table, wanted):
    names = list(table)
    if wanted:
        unknown = [n for n in wanted if n not in table]
        if unknown:
            raise SystemExit(f"unknown contender(s) {', '.join(unknown)}; choose from {', '.join(names)}")
        names = [n for n in names if n in wanted]
    return names


def run_model_benchmark(args, mode, logger):
    """Interleave the contenders of ``mode`` ('infer' or 'train') for ``args.rounds`` rounds."""
    from tqdm import tqdm

    ctx = mp.get_context("spawn")
    table = INFER_CONTENDERS if mode == "infer" else TRAIN_CONTENDERS
    names = _select(table, args.contenders)
    cfg = get_config(str(args.config), ["MODEL.backbone.pretrained="] + args.override, show=False)
    per_clip = args.batch_size * args.views
    flops = flops_from_config(cfg.MODEL, train=(mode == "train")) * per_clip
    # What the project's code runs (for the record; GFLOP/s and %peak use the nominal count, as for HF).
    executed = {"dygraph": flops_from_config(cfg.MODEL, train=(mode == "train"), executed=True) * per_clip,
                "exported": flops_from_config(cfg.MODEL, executed=True, temporal_fc_folded=True) * per_clip}
    if mode == "train" and args.views != 1:
        raise SystemExit("--views applies to inference only (a training clip is one view)")

    workdir = tempfile.mkdtemp(prefix="tsf_bench_")
    base = _base_spec(args, mode)
    needs_export = any(table[n][0] in ("paddle_inference", "onnxruntime", "openvino") for n in names)
    logger.info("preparing weights%s in %s", " and exported models" if needs_export else "", workdir)
    prepared = _spawn_and_wait(ctx, _prepare_worker, dict(base, weights=os.path.join(workdir, "weights.pdparams"),
                                                          export=needs_export, workdir=workdir))
    if "error" in prepared:
        raise SystemExit(f"cannot build the model from {args.config}: {prepared['error']}")
    if prepared.get("exported", {}).get("onnx_error"):
        logger.warning("ONNX export failed: %s", prepared["exported"]["onnx_error"])

    if "openvino_int8" in names and prepared.get("exported", {}).get("pdmodel"):
        logger.info("quantizing the export to int8 for openvino_int8 (NNCF, %d random clips)", CALIB_CLIPS)
        quantized = _spawn_and_wait(ctx, _quantize_worker, dict(base, exported=prepared["exported"]))
        if "error" in quantized:
            logger.warning("int8 quantization failed: %s", quantized["error"])

    contenders = [Contender(ctx, "sgemm", dict(base, kind="sgemm"))]
    for name in names:
        kind, options = table[name]
        spec = dict(base, kind=kind, options=options, weights=prepared["weights"],
                    overrides=base["overrides"] + options.get("overrides", []),
                    default_env=options.get("default_env", False),
                    exported=prepared.get("exported", {}))
        if kind == "onnxruntime" and not spec["exported"].get("onnx"):
            logger.warning("contender %s skipped: no ONNX model", name)
            continue
        if kind == "hf_torch" and not _importable("torch", "transformers"):
            logger.info("contender %s skipped: torch/transformers not importable", name)
            continue
        contenders.append(Contender(ctx, name, spec))
    for contender in contenders:
        contender.wait_ready()

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

    diffs = _compare_outputs(contenders, names, table) if mode == "infer" else {}
    for contender in contenders:
        contender.stop()
    shutil.rmtree(workdir, ignore_errors=True)  # weights and exported models of this run only
    report = _report(contenders, table, flops, diffs, mode, args)
    report["executed_flops_per_iter"] = executed if mode == "infer" else {"dygraph": executed["dygraph"]}
    report["low_precision_vs_fp32"] = low_precision_ratios(report["rows"])
    return report


def _importable(*modules):
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


def _compare_outputs(contenders, names, table):
    """Max |output - reference output| for contenders that share the reference weights."""
    import numpy as np

    by_name = {c.name: c for c in contenders}
    ref_name = next((n for n in names if table[n][1].get("ref")), None)
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


def _report(contenders, table, flops, diffs, mode, args):
    sgemm = contenders[0]
    peak = max(sgemm.values) if sgemm.values else float("nan")
    ref = next((c for c in contenders[1:] if table[c.name][1].get("ref") and c.times), None)
    ref_median = statistics.median(ref.times) if ref else None
    ref_min = min(ref.times) if ref else None
    rows = []
    for contender in contenders[1:]:
        if contender.error or not contender.times:
            rows.append({"name": contender.name, "error": contender.error or "no timings"})
            continue
        median = statistics.median(contender.times)
        best = min(contender.times)
        rows.append({
            "name": contender.name,
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
        })
    return {
        "mode": mode,
        "reference": ref.name if ref else None,
        "flops_per_iter": flops,
        "sgemm_peak_gflops": peak,
        "sgemm_gflops_per_round": sgemm.values,
        "rows": rows,
    }


def print_model_report(report):
    mode = report["mode"]
    print(f"\n== {mode}: {report['flops_per_iter'] / 1e9:.1f} GFLOP per iteration; "
          f"sgemm peak {report['sgemm_peak_gflops']:.1f} GFLOP/s (per round: "
          f"{', '.join(f'{v:.0f}' for v in report['sgemm_gflops_per_round'])}); "
          f"speed-up vs {report['reference']}: 'x ref' of medians, 'x(min)' of minimums")
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
        diff = row["max_abs_diff_vs_ref"]
        print(f"{row['name']:<22} {row['median_ms']:>10.0f} {row['min_ms']:>10.0f} "
              f"{row['speedup_vs_ref'] or float('nan'):>6.2f} {row['speedup_vs_ref_min'] or float('nan'):>6.2f} "
              f"{row['gflops']:>8.1f} {row['pct_peak']:>5.0f}% "
              f"{row['pct_peak_best']:>9.0f}% {row['setup_rss_mb'] or 0:>7.0f}MB {row['peak_rss_mb'] or 0:>7.0f}MB "
              f"{'' if diff is None else f'{diff:.1e}':>9}")
    ratios = low_precision_ratios(report["rows"])
    if ratios:
        print(f"   vs the fastest fp32 path ({ratios['fp32']}, median): "
              + ", ".join(f"{name} {value:.2f}x" for name, value in ratios["speedup"].items()))


# Contenders that are not one of the project's fp32 deployment paths: lower precision, another library, a ceiling.
NOT_FP32_PATHS = ("openvino_bf16", "openvino_int8", "hf_torch", "matmuls_only")


def low_precision_ratios(rows):
    """``{'fp32': fastest fp32 contender, 'speedup': {bf16/int8 contender: its median speed-up}}``, or None."""
    timed = {row["name"]: row["median_ms"] for row in rows if "error" not in row}
    fp32 = {name: ms for name, ms in timed.items() if name not in NOT_FP32_PATHS}
    low = {name: ms for name, ms in timed.items() if name in ("openvino_bf16", "openvino_int8")}
    if not fp32 or not low:
        return None
    best = min(fp32, key=fp32.get)
    return {"fp32": best, "speedup": {name: fp32[best] / ms for name, ms in low.items()}}


def run_profile(args, logger):
    """Print where the time of one forward and of one training step goes, by op (share of op time)."""
    ctx = mp.get_context("spawn")
    results = {}
    for mode in ("infer", "train"):
        result = _spawn_and_wait(ctx, _profile_worker, _base_spec(args, mode))
        if "error" in result:
            logger.warning("profiling %s failed: %s", mode, result["error"])
            continue
        total = sum(r[2] for r in result["ops"]) or float("nan")
        print(f"\n== profile {mode}: one {'forward' if mode == 'infer' else 'training step'}, "
              f"{result['wall_ms']:.0f} ms wall; top ops by total CPU time (share of summed op time)")
        for name, calls, ms in result["ops"][: args.profile_top]:
            print(f"{name:<40} {calls:>6} calls {ms:>10.1f} ms {100 * ms / total:>5.1f}%")
        results[mode] = result
    return results


def run_loader(args, logger):
    """Data loading: the sampled test/train pipelines vs decoding whole clips (tools/bench_loader.py)."""
    import importlib.util

    path = REPO / "tools" / "bench_loader.py"
    if not path.is_file():
        raise SystemExit(f"--mode loader needs {path}")
    spec = importlib.util.spec_from_file_location("bench_loader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.run_loader_benchmark(str(args.config), rounds=args.rounds, threads=args.threads)
    print("\n== loader: clips/s per pipeline, sampled decoding vs decoding the whole clip")
    for row in rows:
        print("  ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return rows


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
    modes = ("infer", "train", "loader") if args.mode == "all" else (args.mode,)
    for mode in modes:
        if mode == "loader":
            results["loader"] = run_loader(args, logger)
            continue
        report = run_model_benchmark(args, mode, logger)
        print_model_report(report)
        results[mode] = report
    if args.profile:
        results["profile"] = run_profile(args, logger)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
        print(f"results written to {args.json}")
    return results


if __name__ == "__main__":
    sys.exit(run("benchmark.py", main))
