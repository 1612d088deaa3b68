"""Convert a PyTorch TimeSformer checkpoint (original release or transformers) to a .pdparams file.

Examples:
    # original release (.pyth; needs torch): settings inferred from the tensors, or given with -c
    python tools/convert_checkpoint.py --from fb TimeSformer_divST_16x16_448_K400.pyth \\
        -o data/TimeSformer_hr_k400.pdparams -c configs/recognition/timesformer/timesformer_hr_k400_videos.yaml
    # transformers folder (config.json + model.safetensors; no torch needed)
    python tools/convert_checkpoint.py --from hf timesformer-base-finetuned-k600/ -o data/TimeSformer_k600.pdparams

Every mapped key is logged; the result is loaded into the model built from the config (given,
or derived from the checkpoint) before it is written, so a file that is written also loads.
"""

import argparse
import os
import sys
import warnings

warnings.filterwarnings("ignore", message="No ccache found")  # paddle's build-cache notice, irrelevant here
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddlevideo.modeling.convert import (  # noqa: E402
    FORMATS,
    ConversionError,
    compare_settings,
    log_report,
    read_source,
    settings_as_overrides,
    verify_in_model,
)
from paddlevideo.utils import ConfigError, get_config, setup_logger  # noqa: E402

BASE_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "recognition", "timesformer",
                           "timesformer_k400_videos.yaml")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="fmt", required=True, choices=FORMATS,
                        help="fb: original release .pyth; hf: transformers save_pretrained folder")
    parser.add_argument("src", help="the .pyth file (fb) or the folder (hf)")
    parser.add_argument("-o", "--output", required=True, help="the .pdparams file to write")
    parser.add_argument("-c", "--config", default=None,
                        help="config of the target model (default: the K400 config with the checkpoint's settings)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow full unpickling of .pyth/.bin files that need it (runs code from the file)")
    return parser.parse_args(argv)


def build_config(args, settings, logger):
    """The config the converted weights are verified against."""
    if args.config is None:
        cfg = get_config(BASE_CONFIG, settings_as_overrides(settings), show=False)
        logger.info("no -c given: verifying with %s and the checkpoint's settings: %s", os.path.normpath(BASE_CONFIG),
                    ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in settings.items()))
        return cfg
    cfg = get_config(args.config, show=False)
    conflicts, resized = compare_settings(cfg, settings, args.fmt)
    if conflicts:
        raise ConversionError(f"config '{args.config}' does not match the checkpoint ({'; '.join(conflicts)}); "
                              "use the matching variant config or omit -c")
    for item in resized:
        logger.info("config differs from the checkpoint in %s: the embedding is resized when loading", item)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    logger = setup_logger()
    try:
        state, report, settings = read_source(args.src, args.fmt, args.trust_pickle)
        log_report(report, logger)
        cfg = build_config(args, settings, logger)
        verify_in_model(state, cfg.MODEL)
    except (ConversionError, ConfigError, ValueError) as err:  # CheckpointError is a ValueError
        logger.error("%s", err)
        return 1

    import paddle

    from paddlevideo.utils.save_load import save

    save({k: paddle.to_tensor(v) for k, v in state.items()}, args.output)
    transposed = sum(row["transposed"] for row in report)
    logger.info("converted %d tensors (%d Linear weights transposed to [in, out]) from %s '%s'; "
                "verified against the model of %s; wrote %s", len(report), transposed, args.fmt, args.src,
                args.config or "the derived config", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
