"""``--mode timeline`` (issue 22): windows per second of ``predict_timeline`` on a long video against the model
alone on the same windows, same backend and batch: does decoding overlap inference?"""

import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
import traceback

from paddlevideo.config import get_config

from .common import load_cfg, one_line, rss_mb
from .model import base_spec
from .openvino import OpenVINORunner
from .workers import IDLE_BETWEEN_RUNS_S, runner_prepare_worker, setup_worker_process, spawn_and_wait

BACKENDS = {"paddle_inference": ("paddle", "fp32"), "openvino_fp32": ("openvino", "fp32"),
            "openvino_int8": ("openvino", "int8")}


def timeline_worker(spec, conn):
    """In a fresh process: write a long video (H.264 MP4, 320x240 at 30 fps, ``spec['windows']`` windows of
    the config), then per round time (a) the predictor alone on the same number of real preprocessed
    windows, batch after batch, and (b) ``predict_timeline`` on the video (decode, sample, transform,
    infer); sends the seconds of each and the peak RSS."""
    setup_worker_process(spec)
    try:
        import numpy as np

        from paddlevideo.deploy.predictor import build_predictor
        from paddlevideo.deploy.timeline import TimelineSettings, WindowPlan, WindowStream, predict_timeline

        cfg = load_cfg(spec)
        settings = TimelineSettings(batch_size=spec["batch_size"]).resolved(cfg, 30.0)
        plan = WindowPlan(cfg, settings)
        video = os.path.join(spec["workdir"], "long.mp4")
        frames = plan.start(spec["windows"] - 1) + plan.span
        write_long_video(video, frames)
        predictor = build_predictor(spec["exported"]["pdmodel"], spec["backend"], spec["precision"],
                                    cpu_threads=spec["threads"])
        with WindowStream(video, cfg, settings) as stream:
            batch = np.stack([window.imgs for window in next(stream.batches())])
        num_batches = spec["windows"] // spec["batch_size"]
        model_s, timeline_s = [], []
        for round_index in range(spec["warmup"] + spec["rounds"]):
            start = time.perf_counter()
            for _ in range(num_batches):
                predictor(batch)
            model = time.perf_counter() - start
            time.sleep(IDLE_BETWEEN_RUNS_S)
            start = time.perf_counter()
            timeline = predict_timeline(video, cfg, predictor, settings)
            elapsed = time.perf_counter() - start
            if len(timeline.windows) != spec["windows"] or timeline.error:
                raise RuntimeError(f"timeline scored {len(timeline.windows)} of {spec['windows']} windows "
                                   f"({timeline.error})")
            if round_index >= spec["warmup"]:
                model_s.append(model)
                timeline_s.append(elapsed)
        conn.send({"model_s": model_s, "timeline_s": timeline_s, "frames": frames, "peak_rss_mb": rss_mb()[1],
                   "window_s": settings.window_s, "stride_s": settings.stride_s,
                   "views": int(batch.shape[2] // plan.sampler.num_seg)})
    except Exception as exc:
        conn.send({"error": one_line(exc), "traceback": traceback.format_exc()})


def export_worker(spec, conn):
    """Random weights exported as ``.pdmodel`` for the test pipeline's views (nothing else: no PIR, no ONNX)."""
    setup_worker_process(spec)
    try:
        from paddlevideo.deploy.export import export_model

        written = export_model(load_cfg(spec), None, os.path.join(spec["workdir"], "pdmodel"), random_init=True,
                               num_views=spec["views"])
        conn.send({"exported": {"pdmodel": written["model"]}})
    except Exception as exc:
        conn.send({"error": one_line(exc)})


def write_long_video(path, frames, size=(240, 320), fps=30):
    """A K400-like long-GOP video: H.264 (PyAV's libx264, MPEG-4 Part 2 if absent), a shape moving over noise."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    height, width = size
    with av.open(path, "w") as container:
        try:
            stream = container.add_stream("libx264", rate=fps)
        except Exception:  # noqa: BLE001 - a PyAV without libx264
            stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        background = rng.integers(0, 120, size=(height, width, 3), dtype=np.uint8)
        for index in range(frames):
            image = background.copy()
            x = (4 * index) % (width - 40)
            image[60:100, x:x + 40] = (220, 180, (index * 3) % 255)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def run_timeline_benchmark(args, logger):
    """For each backend in ``--contenders`` (paddle_inference, openvino_fp32, openvino_int8; default
    paddle_inference): windows/s of a timeline vs the model alone at ``--batch_size``; prints and returns rows."""
    names = args.contenders or ["paddle_inference"]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise SystemExit(f"unknown timeline contender(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    ctx = mp.get_context("spawn")
    cfg = get_config(str(args.config), ["MODEL.backbone.pretrained="] + args.override, show=False)
    from paddlevideo.deploy.timeline.settings import test_pipeline

    views = test_pipeline(cfg)[0].output_shape()[1] // cfg.MODEL.backbone.num_seg  # the test pipeline's views
    windows = max(args.timeline_windows // args.batch_size, 1) * args.batch_size
    workdir = tempfile.mkdtemp(prefix="tsf_bench_timeline_")
    base = dict(base_spec(args, "infer"), views=views, windows=windows, rounds=args.rounds, warmup=args.warmup,
                workdir=workdir)
    rows = []
    try:
        prepared = spawn_and_wait(ctx, export_worker, base)
        if "error" in prepared:
            raise SystemExit(f"cannot build the model from {args.config}: {prepared['error']}")
        if "openvino_int8" in names:
            quantized = spawn_and_wait(ctx, runner_prepare_worker, dict(
                base, exported=prepared["exported"], runner=OpenVINORunner, options={"precision": "int8"}))
            if "error" in quantized:
                logger.warning("int8 quantization failed: %s", quantized["error"])
        for name in names:
            backend, precision = BACKENDS[name]
            logger.info("timeline contender %s: %d windows, batch %d, %d round(s)", name, windows,
                        args.batch_size, args.rounds)
            result = spawn_and_wait(ctx, timeline_worker, dict(base, exported=prepared["exported"], backend=backend,
                                                               precision=precision))
            if "error" in result:
                logger.warning("timeline contender %s unavailable: %s", name, result["error"])
                rows.append({"name": name, "error": result["error"]})
                continue
            model_wps = windows / statistics.median(result["model_s"])
            timeline_wps = windows / statistics.median(result["timeline_s"])
            rows.append({"name": name, "windows": windows, "batch_size": args.batch_size, "views": result["views"],
                         "window_s": result["window_s"], "stride_s": result["stride_s"], "frames": result["frames"],
                         "model_windows_per_s": model_wps, "timeline_windows_per_s": timeline_wps,
                         "ratio": timeline_wps / model_wps, "peak_rss_mb": result["peak_rss_mb"],
                         "model_s": result["model_s"], "timeline_s": result["timeline_s"]})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n== timeline: {windows} windows of a {cfg.MODEL.backbone.num_seg}-frame x {views}-view model, batch "
          f"{args.batch_size}; windows/s of the model alone vs predict_timeline (decode + sample + transform + infer)")
    print(f"{'contender':<18} {'model w/s':>10} {'timeline w/s':>13} {'ratio':>6} {'RSS peak':>9}")
    for row in rows:
        if "error" in row:
            print(f"{row['name']:<18} unavailable: {row['error']}")
            continue
        print(f"{row['name']:<18} {row['model_windows_per_s']:>10.2f} {row['timeline_windows_per_s']:>13.2f} "
              f"{row['ratio']:>6.2f} {row['peak_rss_mb']:>7.0f}MB")
    return {"rows": rows}
