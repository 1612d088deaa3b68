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
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("predict.py", __name__)
import argparse  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="No ccache found")  # paddle's build-cache notice, irrelevant here

from paddlevideo.deploy.predictor import BACKENDS, PRECISIONS# noqa: E402
from paddlevideo.loader.video_files import VIDEO_EXTENSIONS# noqa: E402
from paddlevideo.utils.cli import add_debug_flag, print_error, run  # noqa: E402
from paddlevideo.utils.logger import log_to_stderr  # noqa: E402
from paddlevideo.utils.errors import UserError  # noqa: E402

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
                    help=f"a video file, or a folder of videos ({' '.join(VIDEO_EXTENSIONS)}; not recursive)")
    io.add_argument("-c", "--config", required=True,
                    help="the model's config: its PIPELINE.test preprocesses the videos (as main.py --test)")
    io.add_argument("--top_k", type=int, default=1, help="how many best classes to print per video")
    io.add_argument("--label_file", default=None,
                    help="class names, 'id name' per line; default: the list the config names "
                         "(INFERENCE.label_file, label_file or DATASET.label_file), if any")
    io.add_argument("--output", choices=("text", "json"), default="text",
                    help="text: PaddleVideo's lines per video; json: one JSON object per video and line "
                         "(file, class_ids, class_names, scores)")
    io.add_argument("--batch_size", type=int, default=1, help="videos per model call")
    io.add_argument("--visualize", default=None, metavar="OUT",
                    help="also write each video with its top-k classes and scores drawn on every frame to "
                         "OUT/<video file name>.mp4 (a GIF if no MP4 encoder works)")
    io.add_argument("--visualize_scale", type=int, default=1,
                    help="with --visualize: enlarge the frames this many times first (legible text on tiny videos)")
    io.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value (repeatable)")

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
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top_k must be >= 1")
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


def _check_visualize_outputs(args, files):
    """--visualize: the folder is created and written to, and no annotated video may be one of the inputs (an
    earlier run's annotated video in the input folder is an input too), before any work."""
    from paddlevideo.utils.cli import prepare_output_dir
    from paddlevideo.utils.overwrite import refuse_overwriting_inputs
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


def main(argv=None):
    args = parse_args(argv)
    logger = log_to_stderr()
    from paddlevideo.utils import ConfigError, get_config
    from paddlevideo.utils.cpu import configure_cpu

    configure_cpu(args.cpu_threads)
    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.deploy.errors import PredictError
    from paddlevideo.deploy.predict import format_json, format_text, predict_videos
    from paddlevideo.loader.video_files import list_videos
    from paddlevideo.loader.labels import read_label_names

    try:
        cfg = get_config(args.config, args.override, show=False)
        pipeline = build_pipeline(cfg.PIPELINE.test, "test")
        label_names = read_label_names(cfg, args.label_file, instead="printing class ids only")
        files = list_videos(args.input_file)
        if args.visualize:
            _check_visualize_outputs(args, files)
        _resolve_device(args, logger)
        _check_model(args, cfg)
        predictor = build_predictor(args)
    except (ConfigError, PredictError, KeyError, ValueError) as err:  # one line from cli.run (--debug: traceback)
        raise UserError(err.args[0] if isinstance(err, KeyError) and err.args else str(err)) from err

    progress = files
    if os.path.isdir(args.input_file):
        from tqdm import tqdm

        progress = tqdm(files, desc="predict", unit="video", file=sys.stderr, dynamic_ncols=True)

    def emit(line, stream=sys.stdout):
        # tqdm.write keeps the progress bar below the printed lines.
        (progress.write if progress is not files else print)(line, file=stream)

    timer, failed, unwritten = {}, 0, 0
    for result in predict_videos(progress, pipeline, predictor, args.batch_size, args.top_k, label_names, timer):
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
