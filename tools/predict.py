#!/usr/bin/env python
"""Classify videos with an exported TimeSformer (Paddle Inference, ONNX Runtime or OpenVINO).

Examples::

    python tools/predict.py --input_file data/example.avi \\
        --config configs/recognition/timesformer/timesformer_k400_videos.yaml \\
        --model_file inference/TimeSformer/TimeSformer.pdmodel \\
        --params_file inference/TimeSformer/TimeSformer.pdiparams
    python tools/predict.py --input_file videos/ --config CONFIG --backend onnxruntime \\
        --onnx_file inference/TimeSformer/TimeSformer.onnx --output json
    python tools/predict.py --input_file videos/ --config CONFIG --backend openvino --precision int8 \
        --model_file inference/TimeSformer/TimeSformer.pdmodel      # after tools/quantize.py

Prints per video (text)::

    Current video file: data/example.avi
    \ttop-1 class: 5
    \ttop-1 score: 0.99...
    \ttop-1 class name: archery        (when a label list is known)

Videos that cannot be read are reported on stderr, one line each; the others are still predicted and
the exit code is 1 when any failed.

Timelines (what happens when, docs/timeline.md)::

    python tools/predict.py -c CONFIG --model_file M.pdmodel -i match.mp4 --timeline out/ [--smooth 5]
    python tools/predict.py -c CONFIG --model_file M.pdmodel -i 0 --timeline out/          # camera 0
    ffmpeg -i rtsp://camera/stream -c:v mjpeg -f matroska - | \
        python tools/predict.py -c CONFIG --model_file M.pdmodel -i - --timeline out/      # a pipe

write ``out/<stem>.timeline.csv``, ``<stem>.segments.json`` and ``<stem>.timeline.png`` per video; a live
source (camera, URL, pipe) prints one line per window as it is scored. Ctrl-C writes what was scored and
exits 130; a video that breaks off or a source that stalls (``--timeout_s``) ends with one line and exit 1.
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("predict.py", __name__)
import argparse  # noqa: E402


from paddlevideo.deploy.predictor import BACKENDS, PRECISIONS# noqa: E402
from paddlevideo.loader.video_files import VIDEO_EXTENSIONS# noqa: E402
from paddlevideo.cli import add_debug_flag, interrupt_requested, print_error, run  # noqa: E402
from paddlevideo.common.logger import log_to_stderr  # noqa: E402
from paddlevideo.common.errors import UserError  # noqa: E402

PROG = "predict.py"


def str2bool(text):
    """PaddleVideo-style booleans: ``--use_gpu=True``, ``--enable_mkldnn false``, ``1``/``0``, ``yes``/``no``."""
    value = str(text).strip().lower()
    if value in ("true", "t", "yes", "y", "1", "on"):
        return True
    if value in ("false", "f", "no", "n", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got '{text}'")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description="Classify videos with an exported TimeSformer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    io = parser.add_argument_group("input and output")
    io.add_argument("-i", "--input_file", required=True,
                    help=f"a video file, or a folder of videos ({' '.join(VIDEO_EXTENSIONS)}; not recursive); "
                         "with --timeline also a camera index (0), an rtsp:// or http:// URL, or a pipe "
                         "('-' for stdin, /dev/stdin, a FIFO); with --time_test_file=True a text file listing one video path per "
                         "line")
    io.add_argument("--time_test_file", type=str2bool, default=False,
                    help="--input_file is a text file of video paths, one per line (PaddleVideo's flag)")
    io.add_argument("-c", "--config", required=True,
                    help="the model's config: its PIPELINE.test preprocesses the videos (as main.py --test)")
    io.add_argument("--top_k", type=int, default=None,
                    help="how many best classes to print per video (default 1; with --timeline: classes per "
                         "window in the CSV, default 3)")
    io.add_argument("--label_file", default=None,
                    help="class names, 'id name' per line; default: the list the config names "
                         "(INFERENCE.label_file, label_file or DATASET.label_file), if any")
    io.add_argument("--output", choices=("text", "json"), default="text",
                    help="text: PaddleVideo's lines per video; json: one JSON object per video and line "
                         "(file, class_ids, class_names, scores)")
    io.add_argument("-b", "--batch_size", type=int, default=1, help="videos (with --timeline: windows) per model call")
    io.add_argument("--visualize", default=None, metavar="OUT",
                    help="also write each video with its top-k classes and scores drawn on every frame to "
                         "OUT/<video file name>.mp4 (a GIF if no MP4 encoder works)")
    io.add_argument("--visualize_scale", type=int, default=1,
                    help="with --visualize: enlarge the frames this many times first (legible text on tiny videos)")
    io.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value (repeatable)")

    timeline = parser.add_argument_group("timeline (what happens when; docs/timeline.md)")
    timeline.add_argument("--timeline", default=None, metavar="OUT",
                          help="score overlapping windows of each video and write OUT/<stem>.timeline.csv, "
                               "<stem>.segments.json and <stem>.timeline.png (with --visualize: the video with "
                               "its current label drawn)")
    timeline.add_argument("--window_s", type=float, default=None,
                          help="window length in seconds (default: the config's clip span, num_seg x "
                               "sampling_rate / target_fps of PIPELINE.test.decode; 8.53 s for K400)")
    timeline.add_argument("--stride_s", type=float, default=None,
                          help="seconds between window starts (default: half a window)")
    timeline.add_argument("--smooth", type=int, default=1,
                          help="average the class scores over this many neighbouring windows (1: none); the CSV's "
                               "class_id and score are then the smoothed ones")
    timeline.add_argument("--min_segment_s", type=float, default=None,
                          help="in <stem>.segments.json, a run of windows shorter than this between two segments "
                               "joins its neighbours instead of being a segment (default: one window; 0: keep "
                               "every run); the CSV keeps each window's label")
    timeline.add_argument("--cuts", choices=("auto", "off"), default=None,
                          help="auto (default): detect hard cuts as the frames stream by; windows that straddle "
                               "one are marked (CSV column crosses_cut) and left out of --smooth's averages, and a "
                               "segment boundary moves onto a nearby cut whose two shots carry the labels of the "
                               "two segments (docs/timeline.md); off: none of it")
    timeline.add_argument("--timeout_s", type=float, default=30.0,
                          help="end with an error when the source delivers no frame for this long (live "
                               "sources: also the longest wait for the first frame)")
    timeline.add_argument("--timeline_truth", default=None, metavar="CSV",
                          help="true segments (start_s,end_s,class_id[,class_name] per row, e.g. "
                               "tools/make_demo_long_video.py's .truth.csv) drawn above the timeline picture "
                               "(one video only)")
    timeline.add_argument("--fps", type=float, default=None,
                          help="frame rate for window times when a live source states none (default: the "
                               "source's)")

    model = parser.add_argument_group("model and backend")
    model.add_argument("--backend", choices=BACKENDS, default="paddle",
                       help="paddle: Paddle Inference on --model_file/--params_file; "
                            "onnxruntime: ONNX Runtime on --onnx_file; "
                            "openvino: OpenVINO on --model_file (.pdmodel, .json, .onnx or .xml), CPU fp32/bf16/int8")
    model.add_argument("--model_file", default=None,
                       help="exported program: <model_name>.pdmodel or the PIR <model_name>.json (backends paddle, openvino; "
                            "openvino also reads <model_name>.onnx and OpenVINO .xml)")
    model.add_argument("--params_file", default=None,
                       help="exported weights <model_name>.pdiparams (default: next to --model_file)")
    model.add_argument("--onnx_file", default=None, help="exported <model_name>.onnx (backend onnxruntime)")

    device = parser.add_argument_group("device and speed")
    device.add_argument("--use_gpu", type=str2bool, default=False,
                        help="run on GPU 0 (a CPU-only build warns and uses the CPU)")
    device.add_argument("--use_tensorrt", type=str2bool, default=False,
                        help="TensorRT subgraphs (backend paddle, needs --use_gpu=True and a TensorRT build)")
    device.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="TensorRT precision on GPU; on CPU with --backend openvino: bf16 (fp16 means bf16, "
                             "as in PaddleVideo; fp32 with a note on CPUs without bf16) or int8 (the model "
                             "tools/quantize.py wrote next to --model_file)")
    device.add_argument("--gpu_mem", type=int, default=8000, help="initial GPU memory pool in MB (backend paddle)")
    device.add_argument("--enable_mkldnn", type=str2bool, default=True,
                        help="oneDNN kernels on CPU (backend paddle); the fast path, on by default")
    device.add_argument("--cpu_threads", type=int, default=None,
                        help="CPU math threads (default: all cores available to this process)")
    device.add_argument("--ir_optim", type=str2bool, default=True,
                        help="graph optimisation passes such as operator fusion (backend paddle)")
    device.add_argument("--enable_benchmark", type=str2bool, default=False,
                        help="print the mean preprocess / inference / postprocess time per video at the end")
    device.add_argument("--disable_glog", type=str2bool, default=True,
                        help="silence Paddle Inference's C++ log lines")
    device.add_argument("--use_xpu", type=str2bool, default=False,
                        help="Kunlun XPU: not supported here (True warns and runs on the CPU)")
    device.add_argument("--use_npu", type=str2bool, default=False,
                        help="Ascend NPU: not supported here (True warns and runs on the CPU)")
    device.add_argument("--hubserving", type=str2bool, default=False,
                        help="PaddleHub serving: not supported here (True is an error)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.top_k is not None and args.top_k < 1:
        parser.error("--top_k must be >= 1")
    timeline_only = [f"--{name}" for name in ("window_s", "stride_s", "fps", "timeline_truth", "min_segment_s", "cuts")
                     if getattr(args, name) is not None]
    timeline_only += ["--smooth"] if args.smooth != 1 else []
    if args.timeline is None and timeline_only:
        parser.error(f"{', '.join(timeline_only)} only apply with --timeline OUT")
    if args.timeline is None:
        from paddlevideo.deploy.timeline.sources import is_live

        if is_live(args.input_file):
            parser.error(f"--input_file {args.input_file} is a camera, URL or pipe: add --timeline OUT to score it "
                         "window by window")
    if args.batch_size < 1:
        parser.error("--batch_size must be >= 1")
    if args.visualize_scale < 1:
        parser.error("--visualize_scale must be >= 1")
    if args.cpu_threads is not None and args.cpu_threads < 1:
        parser.error("--cpu_threads must be >= 1")
    if args.backend == "paddle" and not args.model_file:
        parser.error("--backend paddle needs --model_file (and --params_file), as written by tools/export_model.py")
    if args.backend == "openvino" and not args.model_file:
        if not args.onnx_file:
            parser.error("--backend openvino needs --model_file (.pdmodel, .json, .onnx or .xml)")
        args.model_file = args.onnx_file
    if args.backend == "onnxruntime" and not args.onnx_file:
        parser.error("--backend onnxruntime needs --onnx_file, as written by tools/export_model.py --onnx")
    return args


def _resolve_device(args, logger):
    """Downgrade GPU-only requests on a machine without one, with a warning each."""
    for flag, device in (("use_xpu", "Kunlun XPU"), ("use_npu", "Ascend NPU")):
        if getattr(args, flag):
            logger.warning("--%s=True: this project has no %s backend (Paddle Inference on CPU or CUDA GPU, ONNX "
                           "Runtime, OpenVINO); running on the %s", flag, device, "GPU" if args.use_gpu else "CPU")
    if args.use_gpu and args.backend == "paddle":
        from paddlevideo.deploy.backends.paddle_inference import cuda_available

        if not cuda_available():
            logger.warning("--use_gpu=True but this Paddle build has no usable GPU; running on CPU")
            args.use_gpu = False
    if args.use_tensorrt and (not args.use_gpu or args.backend != "paddle"):
        logger.warning("--use_tensorrt needs --use_gpu=True on a GPU with backend paddle; ignored")
        args.use_tensorrt = False
    if args.use_gpu and args.backend == "openvino":
        logger.warning("--backend openvino runs on the CPU here; --use_gpu ignored")
        args.use_gpu = False
    if args.precision != "fp32" and not args.use_tensorrt and args.use_gpu:
        logger.warning("--precision %s applies to TensorRT only; computing fp32", args.precision)
        args.precision = "fp32"
    elif args.precision != "fp32" and not args.use_gpu:
        from paddlevideo.deploy.predictor import resolve_cpu_precision

        args.precision, note = resolve_cpu_precision(args.backend, args.precision)
        if note:
            logger.warning("%s", note)


def read_video_list(path):
    """``--time_test_file=True``: the video paths listed in the text file ``path``, one per line (blank lines skipped)."""
    from paddlevideo.deploy.errors import PredictError

    try:
        with open(path, encoding="utf-8") as handle:
            files = [line.strip() for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise PredictError(f"--time_test_file: cannot read the list of videos '{path}' ({err})") from None
    if not files:
        raise PredictError(f"--time_test_file: '{path}' lists no video; write one video path per line")
    return files


def _check_visualize_outputs(args, files):
    """--visualize: the folder is created and written to, and no annotated video may be one of the inputs (an
    earlier run's annotated video in the input folder is an input too), before any work."""
    from paddlevideo.common.files import prepare_output_dir
    from paddlevideo.common.overwrite import refuse_overwriting_inputs
    from paddlevideo.visualization.annotate import annotated_path

    prepare_output_dir(args.visualize, "--visualize")
    outputs = []
    for video in files:
        path = annotated_path(args.visualize, video)
        outputs += [("--visualize", path), ("--visualize", os.path.splitext(path)[0] + ".gif")]
    inputs = [("--input_file", video) for video in files] + [
        ("-c", args.config), ("--model_file", args.model_file), ("--params_file", args.params_file),
        ("--onnx_file", args.onnx_file), ("--label_file", args.label_file)]
    refuse_overwriting_inputs(outputs, inputs)


def _check_model(args, cfg):
    """The model file that will run takes the config's clips and is the one its provenance record describes
    (not replaced, not a stale int8 model, made with this config's shape); a quantized model computes int8."""
    from paddlevideo.deploy.predictor import checked_model_file

    if args.backend == "onnxruntime":
        checked_model_file(args.onnx_file, cfg, args.backend, "fp32")
        return
    _, args.precision = checked_model_file(args.model_file, cfg, args.backend, args.precision, args.params_file)


def build_predictor(args):
    from paddlevideo.deploy.predictor import build_predictor as build

    model_file = args.onnx_file if args.backend == "onnxruntime" else args.model_file
    return build(model_file, args.backend, args.precision, params_file=args.params_file,
                 cpu_threads=args.cpu_threads, use_gpu=args.use_gpu, use_tensorrt=args.use_tensorrt,
                 enable_mkldnn=args.enable_mkldnn, ir_optim=args.ir_optim, gpu_mem=args.gpu_mem,
                 disable_glog=args.disable_glog, batch_size=args.batch_size)


def _visualize(result, args, cfg, emit):
    """--visualize: write the annotated video; False (after one error line) if it cannot be written."""
    from paddlevideo.visualization.annotate import annotate_prediction
    from paddlevideo.visualization.files import VisualizationError

    backend = (cfg.PIPELINE.test.get("decode") or {}).get("backend", "decord")
    try:
        annotate_prediction(result, args.visualize, args.visualize_scale, backend)
    except (VisualizationError, OSError) as err:
        emit(f"{PROG}: error: {result['file']}: annotated video not written ({err})", sys.stderr)
        return False
    return True


def timeline_settings(args):
    """The --timeline settings from the flags (defaults for the config and video are filled in later)."""
    from paddlevideo.deploy.timeline import TimelineSettings

    return TimelineSettings(window_s=args.window_s, stride_s=args.stride_s, smooth=args.smooth,
                            batch_size=args.batch_size, top_k=args.top_k or TimelineSettings.top_k,
                            timeout_s=args.timeout_s, fps=args.fps, min_segment_s=args.min_segment_s,
                            cuts=args.cuts or "auto")


def timeline_stems(files):
    """Output stems: each file's name without its extension, or with it where two files share a stem."""
    from paddlevideo.deploy.timeline.sources import sanitize_stem, source_stem

    stems = [source_stem(path) for path in files]
    return [stem if stems.count(stem) == 1 else sanitize_stem(os.path.basename(path))
            for stem, path in zip(stems, files)]


def window_line(window, output):
    """One line per scored window of a live source: ``start-end s<TAB>label<TAB>score`` or JSON."""
    if output == "json":
        import json

        keys = ("start_s", "end_s", "class_id", "class_name", "score", "class_ids", "class_names", "scores")
        return json.dumps({key: window[key] for key in keys}, ensure_ascii=False)
    label = window["class_name"] if window["class_name"] is not None else window["class_id"]
    return f"{window['start_s']:.3f}-{window['end_s']:.3f} s\t{label}\t{window['score']:.3f}"


def predict_timelines(args, cfg, predictor, sources, settings, label_names, truth=None):
    """--timeline: the timeline of each source, written to args.timeline; returns the exit code."""
    from tqdm import tqdm

    from paddlevideo.deploy.timeline import is_live, predict_timeline, write_timeline
    from paddlevideo.loader.decoders import VideoOpenError
    from paddlevideo.common.errors import InputError

    failed = 0
    for source, stem in zip(sources, timeline_stems(sources)):
        live = is_live(source)
        bar = None if live else tqdm(desc=os.path.basename(source), unit="window", file=sys.stderr,
                                     dynamic_ncols=True, total=None)

        def on_window(window, done, total, bar=bar):
            if bar is None:
                print(window_line(window, args.output), flush=True)
                return
            if total is not None and bar.total != total:
                bar.total = total
                bar.refresh()
            bar.update(1)

        try:
            timeline = predict_timeline(source, cfg, predictor, settings, label_names, on_window,
                                        should_stop=interrupt_requested)
        except KeyboardInterrupt as interrupt:  # Ctrl-C: keep what was scored, then report the interrupt
            if getattr(interrupt, "timeline", None) is not None:
                _close(bar)
                write_timeline(interrupt.timeline, args.timeline, stem, truth=truth)
            raise
        except (InputError, VideoOpenError) as err:  # this source cannot be opened: say so, go on with the others
            _close(bar)
            failed += 1
            print_error(PROG, str(err))
            continue
        _close(bar)
        paths = write_timeline(timeline, args.timeline, stem, truth=truth)
        if not live or timeline.windows:
            summary = {"source": source, "windows": len(timeline.windows), "segments": len(timeline.segments),
                       "csv": paths["csv"], "segments_json": paths["json"], "png": paths["png"]}
            if args.output == "json":
                import json

                print(json.dumps(summary, ensure_ascii=False), flush=True)
            else:
                print(f"{source}: {summary['windows']} windows, {summary['segments']} segments -> {paths['csv']}",
                      flush=True)
        if timeline.error:
            failed += 1
            print_error(PROG, timeline.error)
        elif args.visualize and timeline.windows and not timeline.stopped:
            failed += not _visualize_timeline(timeline, args, cfg)
        if timeline.stopped:
            break  # interrupted: cli.run reports it (exit 130 / 143)
    if failed and len(sources) > 1:
        print_error(PROG, f"{failed} of {len(sources)} video(s) have no complete timeline")
    return 1 if failed else 0


def _close(bar):
    if bar is not None:
        bar.close()


def _visualize_timeline(timeline, args, cfg):
    from paddlevideo.visualization.annotate import annotate_timeline
    from paddlevideo.visualization.files import VisualizationError

    backend = (cfg.PIPELINE.test.get("decode") or {}).get("backend", "decord")
    try:
        annotate_timeline(timeline, args.visualize, args.visualize_scale, backend)
    except (VisualizationError, OSError) as err:
        print_error(PROG, f"{timeline.source}: annotated video not written ({err})")
        return False
    return True


def main(argv=None):
    args = parse_args(argv)
    logger = log_to_stderr()
    from paddlevideo.config import ConfigError, get_config
    from paddlevideo.runtime import configure_cpu

    configure_cpu(args.cpu_threads, malloc=args.timeline is None)  # a long stream keeps glibc trimming
    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.deploy.errors import PredictError
    from paddlevideo.deploy.predict import format_json, format_text, outputs_probabilities, predict_videos
    from paddlevideo.loader.video_files import list_videos
    from paddlevideo.loader.labels import read_label_names

    from paddlevideo.deploy.timeline.sources import is_live
    from paddlevideo.common.files import prepare_output_dir

    if args.hubserving:
        raise UserError("--hubserving=True: serving the model through PaddleHub is not part of this project; "
                        "predict files with this tool (PaddleVideo's predict.py does not implement it either)")
    try:
        cfg = get_config(args.config, args.override, show=False)
        pipeline = build_pipeline(cfg.PIPELINE.test, "test")
        label_names = read_label_names(cfg, args.label_file, instead="printing class ids only")
        live = args.timeline is not None and is_live(args.input_file)
        files = [args.input_file] if live else (read_video_list(args.input_file) if args.time_test_file
                                                 else list_videos(args.input_file))
        if args.timeline is not None:
            settings = timeline_settings(args)
            truth = None
            if args.timeline_truth:
                from paddlevideo.deploy.timeline import read_truth_segments

                if len(files) > 1:
                    raise ConfigError("--timeline_truth describes one video; --input_file is a folder")
                truth = read_truth_segments(args.timeline_truth)
            prepare_output_dir(args.timeline, "--timeline")
            if args.visualize and live:
                raise ConfigError(f"--visualize draws on a video file; {args.input_file} is a live source (its "
                                "timeline is still written)")
        if args.visualize:
            _check_visualize_outputs(args, files)
        _resolve_device(args, logger)
        _check_model(args, cfg)
        predictor = build_predictor(args)
    except (ConfigError, PredictError, KeyError, ValueError) as err:  # one line from cli.run (--debug: traceback)
        raise UserError(err.args[0] if isinstance(err, KeyError) and err.args else str(err)) from err
    if args.timeline is not None:
        return predict_timelines(args, cfg, predictor, files, settings, label_names, truth)
    args.top_k = args.top_k or 1

    progress = files
    if os.path.isdir(args.input_file):
        from tqdm import tqdm

        progress = tqdm(files, desc="predict", unit="video", file=sys.stderr, dynamic_ncols=True)

    def emit(line, stream=sys.stdout):
        # tqdm.write keeps the progress bar below the printed lines.
        (progress.write if progress is not files else print)(line, file=stream)

    timer, failed, unwritten = {}, 0, 0
    probabilities = outputs_probabilities(cfg)
    for result in predict_videos(progress, pipeline, predictor, args.batch_size, args.top_k, label_names, timer,
                                 probabilities=probabilities):
        if "warning" in result:
            emit(f"WARNING: {result['warning']}", sys.stderr)
        if "error" in result:
            failed += 1
            emit(f"{PROG}: error: {result['error']}", sys.stderr)
        if args.output == "json":
            emit(format_json(result))
        elif "error" not in result:
            emit(format_text(result))
        if args.visualize and "error" not in result:
            unwritten += not _visualize(result, args, cfg, emit)
    if progress is not files:
        progress.close()
    if args.enable_benchmark:
        done = max(1, len(files) - failed)
        parts = ", ".join(f"{stage} {1000 * timer.get(stage, 0.0) / done:.1f} ms"
                          for stage in ("preprocess", "inference", "postprocess"))
        print(f"[benchmark] {args.backend}, {done} video(s), mean per video: {parts}", file=sys.stderr)
    if failed:
        print_error(PROG, f"{failed} of {len(files)} video(s) could not be predicted")
        return 1
    if unwritten:
        print_error(PROG, f"{unwritten} annotated video(s) could not be written to {args.visualize}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
