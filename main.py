"""Train, validate, test or export a TimeSformer from a PaddleVideo-style config.

Examples:
    python main.py -c configs/recognition/timesformer/timesformer_demo_videos.yaml --validate
    python main.py --test -c CONFIG -w output/TimeSformer/TimeSformer_best.pdparams
    python main.py --test -c CONFIG --model_file inference/TimeSformer/TimeSformer.pdmodel --precision int8
    python -m paddle.distributed.launch --nproc_per_node 2 main.py -c CONFIG --validate
    python main.py --export -c CONFIG -w best.pdparams --output_dir inference
"""

import os
import sys

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("main.py", __name__)
import argparse  # noqa: E402

from paddlevideo.cli import add_debug_flag, add_trust_pickle_flag, run  # no paddle import: --help stays fast

PROG = "main.py"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", required=True, help="YAML config file")
    parser.add_argument("-o", "--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config entries, e.g. -o DATASET.batch_size=8 epochs=3 (repeatable)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--test", action="store_true", help="evaluate -w WEIGHTS on DATASET.test")
    mode.add_argument("--export", action="store_true", help="export -w WEIGHTS for inference")
    parser.add_argument("-w", "--weights", default=None, help="model weights (.pdparams) to start from / test / export")
    parser.add_argument("--validate", action="store_true", help="evaluate on DATASET.valid after every epoch")
    parser.add_argument("--amp", action="store_true", help="mixed precision (GPU; fp32 with a warning on CPU)")
    parser.add_argument("--amp_level", choices=("O1", "O2"), default=None,
                        help="O1: fp16 autocast + loss scaling; O2: fp16 weights + fp32 master weights")
    parser.add_argument("--seed", type=int, default=1234, help="random seed (default 1234)")
    parser.add_argument("--max_iters", type=int, default=None, help="stop training after this many batches")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest <model_name>_epoch_*.pdparams/.pdopt in the output dir")
    parser.add_argument("--output_dir", default=None, help="--export: folder for the exported model "
                                                           "(default inference/<model_name>); --test: folder for "
                                                           "test.log, test_scores.npz and test_report/ (default: "
                                                           "the report next to the weights)")
    parser.add_argument("--use_vdl", action="store_true",
                        help="training: also write VisualDL logs to <output_dir>/vdl (as config use_visualdl: True)")
    parser.add_argument("--save_scores", action="store_true", help="--test: also write test_scores.npz")
    parser.add_argument("-p", "--profiler_options", default=None, metavar="OPTIONS",
                        help="training: profile iterations with Paddle's profiler, PaddleVideo's option string, e.g. "
                             "'batch_range=[10,20];timer_only=False' (docs: paddlevideo/tasks/profiling.py)")
    compat = parser.add_argument_group("PaddleVideo flags for other trainers")
    compat.add_argument("--fleet", action="store_true",
                        help="accepted: data-parallel training over the processes paddle.distributed.launch starts "
                             "is what fleet's collective mode does; it runs the same with or without this flag")
    compat.add_argument("--multigrid", action="store_true",
                        help="not supported: PaddleVideo's multigrid schedule is for SlowFast (an error)")
    compat.add_argument("--train_dali", action="store_true",
                        help="not supported: PaddleVideo's DALI GPU loader is for TSN (an error)")
    exported = parser.add_argument_group("--test on an exported model (instead of -w)")
    exported.add_argument("--model_file", default=None,
                          help="exported model to evaluate: .pdmodel / PIR .json (params next to it), .onnx or "
                               "OpenVINO .xml")
    exported.add_argument("--backend", choices=("paddle", "onnxruntime", "openvino"), default=None,
                          help="default: openvino for .xml and for bf16/int8, onnxruntime for .onnx, else paddle")
    exported.add_argument("--precision", choices=("fp32", "fp16", "bf16", "int8"), default="fp32",
                          help="CPU precision (openvino: bf16, fp16 meaning bf16, int8 from tools/quantize.py)")
    add_trust_pickle_flag(parser, "-w, MODEL.backbone.pretrained and the --resume .pdparams/.pdopt")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    _check_combinations(parser, args)
    return args


def _check_combinations(parser, args):
    train_only = {"--validate": args.validate, "--resume": args.resume, "--max_iters": args.max_iters is not None,
                  "--amp": args.amp, "-p/--profiler_options": args.profiler_options is not None}
    if args.test or args.export:
        mode = "--test" if args.test else "--export"
        used = [flag for flag, on in train_only.items() if on]
        if used:
            parser.error(f"{', '.join(used)} only apply to training, not to {mode}")
    if args.test and not args.weights and not args.model_file:
        parser.error("--test needs the weights to evaluate: -w path/to/model.pdparams (or --model_file EXPORTED)")
    if args.model_file and (not args.test or args.weights):
        parser.error("--model_file is for --test, instead of -w")
    if (args.backend or args.precision != "fp32") and not args.model_file:
        parser.error("--backend and --precision apply to --test --model_file")
    if args.output_dir and not (args.export or args.test):
        parser.error("--output_dir is for --export and --test; set the training output folder with -o output_dir=PATH")
    if args.use_vdl and (args.test or args.export):
        parser.error("--use_vdl only applies to training")
    if args.save_scores and not args.test:
        parser.error("--save_scores only applies to --test")
    if args.amp_level and not args.amp:
        parser.error("--amp_level needs --amp")
    if args.resume and args.weights:
        parser.error("--resume continues from the output dir's last epoch; do not combine it with -w")
    if args.max_iters is not None and args.max_iters <= 0:
        parser.error("--max_iters must be a positive number of batches")


# PaddleVideo's main.py flags for trainers this project does not have: one line each says why.
UNSUPPORTED = {
    "multigrid": "--multigrid is PaddleVideo's multigrid training schedule for SlowFast; TimeSformer trains with "
                 "its OPTIMIZER schedule here (drop the flag)",
    "train_dali": "--train_dali is PaddleVideo's NVIDIA DALI GPU data loader for TSN; TimeSformer reads videos with "
                  "the config's PIPELINE here (drop the flag)",
}


def _test_report_dir(args):
    """--test's report folder: ``<--output_dir>/test_report``, else ``test_report`` beside the tested model."""
    model = args.weights or args.model_file
    return os.path.join(args.output_dir or os.path.dirname(os.path.abspath(model)), "test_report")


def main(argv=None):
    """Run the command line ``argv``; errors are raised (``cli.run`` turns them into one line)."""
    args = parse_args(argv)
    for flag, why in UNSUPPORTED.items():
        if getattr(args, flag):
            from paddlevideo.common.errors import ConfigError

            raise ConfigError(why)
    if args.profiler_options:
        from paddlevideo.tasks.profiling import parse_profiler_options

        parse_profiler_options(args.profiler_options)  # a malformed string fails before any work
    from paddlevideo.runtime import configure_cpu

    configure_cpu()  # before the first matmul: MKL code path on AMD, malloc reuse (docs/benchmarks.md)
    from paddlevideo.config import get_config, log_config
    from paddlevideo.common.logger import setup_logger

    cfg = get_config(args.config, args.override, show=False)
    from paddlevideo.tasks.run_files import output_dir_of

    out_dir = args.output_dir if args.test and args.output_dir else output_dir_of(cfg)
    log_name = "test.log" if args.test else "export.log" if args.export else "train.log"
    setup_logger(os.path.join(out_dir, log_name), cfg.log_level)
    if args.test or args.export:
        log_config(cfg)  # training logs it once it owns the output folder (a refused run must not write there)
    if args.export:
        from paddlevideo.deploy.export import export_model

        export_model(cfg, args.weights, args.output_dir or os.path.join("inference", cfg.model_name),
                     fmt="pdmodel", onnx=False, trust_pickle=args.trust_pickle, inputs=[("-c", args.config)])
    elif args.test:
        from paddlevideo.tasks.test import test_model

        test_model(cfg, weights=args.weights, save_scores=args.save_scores,
                   scores_path=args.output_dir and os.path.join(args.output_dir, "test_scores.npz"),
                   report_dir=_test_report_dir(args), model=_exported_model(args, cfg) if args.model_file else None,
                   trust_pickle=args.trust_pickle)
    else:
        from paddlevideo.tasks.train import train_model
        from paddlevideo.common.dist import get_world_size as world_size
        from paddlevideo.common.logger import get_logger

        if args.fleet:
            get_logger().info("--fleet: data-parallel over the processes paddle.distributed.launch started (%d here), "
                              "as without the flag", world_size())
        train_model(cfg, weights=args.weights, validate=args.validate, amp=args.amp,
                    amp_level=args.amp_level or "O1", max_iters=args.max_iters, resume=args.resume,
                    seed=args.seed, use_visualdl=args.use_vdl, trust_pickle=args.trust_pickle,
                    profiler_options=args.profiler_options)
    return 0


def _exported_model(args, cfg):
    """The exported model of ``--model_file`` as the test loop's model (one log line says what runs)."""
    from paddlevideo.deploy.predictor import ExportedModel, build_predictor, checked_model_file, default_backend
    from paddlevideo.deploy.predictor import resolve_cpu_precision
    from paddlevideo.common.logger import get_logger

    backend = args.backend or default_backend(args.model_file, args.precision)
    precision, note = resolve_cpu_precision(backend, args.precision)
    if note:
        get_logger().warning("%s", note)
    run_file, precision = checked_model_file(args.model_file, cfg, backend, precision)
    get_logger().info("testing exported model %s on %s in %s", run_file, backend, precision)
    return ExportedModel(build_predictor(args.model_file, backend, precision))


if __name__ == "__main__":
    sys.exit(run(PROG, main))
