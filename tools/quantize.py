#!/usr/bin/env python
"""Quantize an exported TimeSformer to int8 (NNCF post-training static quantization), calibrated on your clips.

Example::

    python tools/quantize.py -c configs/recognition/timesformer/timesformer_k400_videos.yaml \\
        --model_file inference/TimeSformer/TimeSformer.pdmodel --calib_list data/k400/val.list --num_clips 300
    python tools/predict.py --input_file data/example.avi -c CONFIG --backend openvino --precision int8 \\
        --model_file inference/TimeSformer/TimeSformer.pdmodel

The calibration clips go through the config's test pipeline (as ``main.py --test``); unreadable ones are
skipped and named. Writes ``<model_name>.int8.xml`` + ``.bin`` (OpenVINO IR) and its provenance record
``<model_name>.int8.provenance.json`` next to the model file (or ``--output``) and prints its path. Softmax,
LayerNorm, GELU and the head stay in float (docs/deploy.md). An int8 model is never quantized again, and no
output may be an input; the output folder is checked (created) before the calibration.
"""

import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("quantize.py", __name__)
import argparse  # noqa: E402
import logging  # noqa: E402

from paddlevideo.config import ConfigError, get_config  # noqa: E402
from paddlevideo.common.logger import setup_logger  # noqa: E402
from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.common.errors import UserError  # noqa: E402

PROG = "quantize.py"
DEFAULT_NUM_CLIPS = 300  # the same as paddlevideo.deploy.quantize.DEFAULT_NUM_CLIPS (not imported: --help stays fast)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-c", "--config", required=True,
                        help="the model's config: its PIPELINE.test makes the calibration clips")
    parser.add_argument("--model_file", required=True,
                        help="the exported fp32 model: <model_name>.pdmodel (params next to it), the PIR .json, "
                             ".onnx or an OpenVINO .xml")
    parser.add_argument("--params_file", default=None, help="the .pdiparams when it is not next to --model_file")
    parser.add_argument("--calib_list", required=True,
                        help="calibration videos, 'relative/path label' per line (e.g. your val list)")
    parser.add_argument("--data_prefix", default=None,
                        help="folder the list's paths are relative to (default: the config's DATASET.test.data_prefix)")
    parser.add_argument("--num_clips", type=int, default=DEFAULT_NUM_CLIPS,
                        help="calibration clips: the first readable ones of the list")
    parser.add_argument("--output", default=None,
                        help="the int8 model's .xml (default: <model_name>.int8.xml next to --model_file); its folder "
                             "is created")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value (repeatable)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.num_clips < 1:
        parser.error("--num_clips must be >= 1")
    if args.output and not args.output.endswith(".xml"):
        parser.error("--output must name an OpenVINO .xml (its .bin is written next to it)")
    return args


def main(argv=None):
    args = parse_args(argv)
    setup_logger(level="INFO")
    logging.getLogger().setLevel(logging.WARNING)  # paddle2onnx / NNCF chatter through the root logger
    from paddlevideo.deploy.errors import PredictError
    from paddlevideo.deploy.quantize import quantize_model
    from paddlevideo.runtime import configure_cpu

    configure_cpu()
    try:
        cfg = get_config(args.config, args.override, show=False)
        written = quantize_model(cfg, args.model_file, args.calib_list, args.num_clips, data_prefix=args.data_prefix,
                                 params_file=args.params_file, output=args.output, inputs=[("-c", args.config)])
    except (ConfigError, PredictError, KeyError) as err:  # one line from cli.run
        raise UserError(err.args[0] if isinstance(err, KeyError) and err.args else str(err)) from err
    print(f"int8 model: {written['model']}")
    print(f"calibration clips: {written['clips']} used, {len(written['skipped'])} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
