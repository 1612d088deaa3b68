"""Convert a PyTorch TimeSformer checkpoint (original release or transformers) to a .pdparams file.

Examples:
    # original release (.pyth; needs torch): settings inferred from the tensors, or given with -c
    python tools/convert_checkpoint.py --from fb TimeSformer_divST_16x16_448_K400.pyth \\
        -o data/TimeSformer_hr_k400.pdparams -c configs/recognition/timesformer/timesformer_hr_k400_videos.yaml
    # transformers folder (config.json + model.safetensors; no torch needed to convert)
    python tools/convert_checkpoint.py --from hf timesformer-base-finetuned-k600/ -o data/TimeSformer_k600.pdparams

Every mapped key is logged. Before anything is written:
  1. the config (given, or derived from the checkpoint) must agree with the checkpoint: its tensor shapes
     (embed_dim, depth, patch_size, num_classes, ...), and for --from fb the settings the original release
     fixes in code and no tensor shows: 64-wide attention heads (num_heads = embed_dim / 64) and LayerNorm
     epsilon 1e-6. A config that differs is refused with every key named. A source model trained with
     other values says so with --source-num-heads / --source-epsilon. num_seg and img_size may differ:
     time and position embeddings are then resized when loading;
  2. the weights are loaded into the config's model with exact key and shape checks;
  3. "verified" means: the source model (transformers' TimeSformer, as --from hf reads the folder, or built
     with the release's settings for --from fb) and the converted Paddle model give the same logits on a
     random clip (float64, at the checkpoint's frame count and size). Without torch + transformers, or for
     space_only checkpoints, this step is skipped and the log says so instead of "verified".
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("convert_checkpoint.py", __name__)
import argparse  # noqa: E402


from paddlevideo.modeling.convert import (  # noqa: E402
    FORMATS,
    IMPLIED_BY_RELEASE,
    RELEASE_EPSILON,
    RELEASE_HEAD_WIDTH,
    ConversionError,
    SourceModelUnavailable,
    compare_logits,
    compare_settings,
    log_report,
    read_source,
    settings_as_overrides,
    verify_in_model,
)
from paddlevideo.config import get_config  # noqa: E402
from paddlevideo.common.logger import setup_logger  # noqa: E402
from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.common.files import os_error_reason, prepare_output_dir  # noqa: E402
from paddlevideo.common.overwrite import refuse_overwriting_inputs  # noqa: E402

PROG = "convert_checkpoint.py"
BASE_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "recognition", "timesformer",
                           "timesformer_k400_videos.yaml")
SOURCE_FLAGS = {"MODEL.backbone.num_heads": "--source-num-heads", "MODEL.backbone.epsilon": "--source-epsilon"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="fmt", required=True, choices=FORMATS,
                        help="fb: original release .pyth; hf: transformers save_pretrained folder")
    parser.add_argument("src", help="the .pyth file (fb) or the folder (hf)")
    parser.add_argument("-o", "--output", required=True, help="the .pdparams file to write")
    parser.add_argument("-c", "--config", default=None,
                        help="config of the target model (default: the K400 config with the checkpoint's settings)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow full unpickling of .pyth/.bin files that need it (runs code from the file)")
    parser.add_argument("--source-num-heads", type=int, default=None, metavar="N",
                        help=f"--from fb: the source model's attention heads, if not embed_dim / "
                             f"{RELEASE_HEAD_WIDTH} as in the original release")
    parser.add_argument("--source-epsilon", type=float, default=None, metavar="EPS",
                        help=f"--from fb: the source model's LayerNorm epsilon, if not {RELEASE_EPSILON:g} as in "
                             "the original release")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.source_num_heads is not None and args.source_num_heads < 1:
        parser.error(f"--source-num-heads must be >= 1, got {args.source_num_heads}")
    if args.source_epsilon is not None and not args.source_epsilon > 0:
        parser.error(f"--source-epsilon must be > 0, got {args.source_epsilon}")
    if os.path.isdir(args.output):
        parser.error(f"-o '{args.output}' is a folder; give the .pdparams file to write, e.g. "
                     f"{os.path.join(args.output, 'model.pdparams')}")
    return args


def build_config(args, settings, logger):
    """The config the converted weights are verified against; refuses one that disagrees with the source."""
    if args.config is None:
        cfg = get_config(BASE_CONFIG, settings_as_overrides(settings), show=False)
        logger.info("no -c given: verifying with %s and the checkpoint's settings: %s", os.path.normpath(BASE_CONFIG),
                    ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in settings.items()))
        return cfg
    cfg = get_config(args.config, show=False)
    conflicts, resized = compare_settings(cfg, settings, args.fmt)
    if conflicts:
        hints = [f"{SOURCE_FLAGS[key]} {_config_value_text(item)}" for key in IMPLIED_BY_RELEASE[args.fmt]
                 for item in conflicts if item.startswith(key + ":")]
        hint = (f"; if the source model really used the config's value, say so with {' and '.join(hints)}"
                if hints else "")
        raise ConversionError(f"config '{args.config}' does not match the checkpoint ({'; '.join(conflicts)}); "
                              f"use the matching variant config or omit -c{hint}")
    for item in resized:
        logger.info("config differs from the checkpoint in %s: the embedding is resized when loading", item)
    return cfg


def _config_value_text(conflict):
    """``"KEY: config X vs ..."`` -> ``"X"``."""
    return conflict.split(": config ", 1)[1].split(" vs ", 1)[0]


def check_parity(state, settings, cfg, args, logger):
    """Compare logits with the source model; returns the words the final log line uses."""
    try:
        parity = compare_logits(state, settings, cfg.MODEL, args.fmt, args.src)
    except SourceModelUnavailable as reason:
        logger.warning("logits not compared with the source model: %s; the weights are converted and load, "
                       "but their outputs are not verified", reason)
        return "loaded into"
    if not parity["matches"]:
        raise ConversionError(
            f"the converted model's logits differ from the source model's by {parity['max_abs_diff']:.3g} "
            f"(largest logit {parity['max_abs_logit']:.3g}, tolerance {parity['tolerance']:.1g}): a MODEL setting "
            f"of {args.config or 'the derived config'} does not match how the source model computes (check "
            "attention_type, num_heads, epsilon, qkv_bias, qk_scale); nothing was written")
    logger.info("logits match the source model's (transformers, float64, one random clip): max abs difference "
                "%.2g, largest logit %.3g", parity["max_abs_diff"], parity["max_abs_logit"])
    return "verified against"


def save_state(state, output):
    import paddle

    from paddlevideo.common.errors import UserError
    from paddlevideo.common.save_load import save

    try:
        save({k: paddle.to_tensor(v) for k, v in state.items()}, output)
    except OSError as err:
        if isinstance(err, UserError):  # already names the file and what to do
            raise
        what, advice = os_error_reason(err)
        raise UserError(f"cannot write -o '{output}' ({what}); {advice}; nothing was written") from err


def main(argv=None):
    args = parse_args(argv)
    logger = setup_logger()
    # -o never replaces the source: the .pyth itself, or a file of the transformers folder (its safetensors)
    refuse_overwriting_inputs([("-o", args.output)], [("the source", args.src), ("-c", args.config)])
    prepare_output_dir(os.path.dirname(os.path.abspath(args.output)), "-o's folder")  # fail before the slow part
    source_settings = {"MODEL.backbone.num_heads": args.source_num_heads,
                       "MODEL.backbone.epsilon": args.source_epsilon}
    state, report, settings = read_source(args.src, args.fmt, args.trust_pickle, source_settings)
    log_report(report, logger)
    cfg = build_config(args, settings, logger)
    verify_in_model(state, cfg.MODEL)
    verdict = check_parity(state, settings, cfg, args, logger)
    save_state(state, args.output)
    transposed = sum(row["transposed"] for row in report)
    logger.info("converted %d tensors (%d Linear weights transposed to [in, out]) from %s '%s'; "
                "%s the model of %s; wrote %s", len(report), transposed, args.fmt, args.src, verdict,
                args.config or "the derived config", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
