#!/usr/bin/env python
"""Export a trained TimeSformer for Paddle Inference (and optionally ONNX Runtime).

Examples::

    python tools/export_model.py -c configs/recognition/timesformer/timesformer_k400_videos.yaml \\
        -p output/TimeSformer/TimeSformer_best.pdparams -o inference/TimeSformer
    python tools/export_model.py -c CONFIG -p WEIGHTS.pdparams -o OUT --format pir --onnx

Writes ``OUT/<model_name>.pdmodel`` + ``.pdiparams`` (``--format pir``: ``.json`` + ``.pdiparams``) and,
with ``--onnx``, ``OUT/<model_name>.onnx``, and ``OUT/<model_name>.provenance.json`` (what they were made from:
the weights' digest, the config's shape; checked by predict.py, main.py --test and quantize.py). The model
takes ``[N, 3, num_seg*3, target_size, target_size]`` (``INFERENCE`` section) and returns logits averaged
over the 3 views.
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("export_model.py", __name__)
import argparse  # noqa: E402
import logging  # noqa: E402


from paddlevideo.deploy.export import DEFAULT_OPSET, FORMATS# noqa: E402
from paddlevideo.config import ConfigError, get_config  # noqa: E402
from paddlevideo.common.logger import setup_logger  # noqa: E402
from paddlevideo.cli import add_debug_flag, add_trust_pickle_flag, run  # noqa: E402
from paddlevideo.common.errors import UserError  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True, help="the training config (YAML)")
    parser.add_argument("-p", "--pretrained_params", default=None,
                        help="trained weights (.pdparams, e.g. output/TimeSformer/TimeSformer_best.pdparams); "
                             "required unless --random_init")
    parser.add_argument("-o", "--output_path", default="./inference", help="output folder (default ./inference)")
    parser.add_argument("--format", choices=FORMATS, default="pdmodel",
                        help="pdmodel: .pdmodel + .pdiparams, readable by Paddle Inference 2.6 and 3.x (default); "
                             "pir: Paddle 3.x .json + .pdiparams")
    parser.add_argument("--onnx", action="store_true", help="also write <model_name>.onnx (paddle2onnx, dynamic batch)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--save_name", default=None, metavar="NAME",
                        help="name of the exported files, NAME.pdmodel + NAME.pdiparams (default: the config's "
                             "model_name)")
    parser.add_argument("--random_init", action="store_true",
                        help="export untrained random weights when no -p is given (smoke tests only)")
    parser.add_argument("--override", "--opts", dest="override", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --override INFERENCE.num_seg=16 (repeatable)")
    add_trust_pickle_flag(parser, "the -p weights")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if not args.pretrained_params and not args.random_init:
        parser.error("-p WEIGHTS.pdparams is required (or --random_init to export untrained weights)")
    if args.opset < 7:
        parser.error("--opset must be >= 7 (17 recommended)")
    if args.save_name is not None and (not args.save_name.strip() or os.sep in args.save_name):
        parser.error("--save_name must be a file name without a folder (the folder is -o/--output_path)")
    return args


def main(argv=None):
    args = parse_args(argv)
    setup_logger(level="INFO")
    # paddle2onnx logs through the root logger; keep its chatter out of the user's console.
    logging.getLogger().setLevel(logging.WARNING)
    from paddlevideo.modeling.weights import CheckpointError
    from paddlevideo.deploy.export import export_model

    try:
        cfg = get_config(args.config, args.override, show=False)
        if args.save_name:
            cfg.model_name = args.save_name  # the export names its files after model_name
        written = export_model(cfg, args.pretrained_params, args.output_path, fmt=args.format, onnx=args.onnx,
                               opset=args.opset, random_init=args.random_init, trust_pickle=args.trust_pickle,
                               inputs=[("-c", args.config)])
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as err:  # one line from cli.run
        raise UserError(str(err)) from err
    for kind in ("model", "params", "onnx", "provenance"):
        if kind in written:
            print(f"{kind}: {written[kind]}")
    return 0


if __name__ == "__main__":
    sys.exit(run("export_model.py", main))
