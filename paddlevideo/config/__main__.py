"""Print the config a file resolves to, after ``_BASE_`` inheritance, ``-o`` overrides and derivation.

    python -m paddlevideo.config configs/recognition/timesformer/timesformer_hr_k400_videos.yaml
    python -m paddlevideo.config CONFIG -o MODEL.backbone.num_seg=16 --origins
    python -m paddlevideo.config --keys          # every key the schema knows, with its rule and default

A bad config ends with one line ``paddlevideo.config: error: ...`` and exit code 1.
"""

import argparse
import logging
import sys

from ..runtime import quiet_third_party_warnings

PROG = "python -m paddlevideo.config"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="YAML config file")
    parser.add_argument("-o", "--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config entries, as main.py -o")
    parser.add_argument("--origins", action="store_true",
                        help="print one 'key: value  # where it was set' line per value instead of YAML")
    parser.add_argument("--keys", action="store_true", help="list every key the schema knows and exit")
    args = parser.parse_args(argv)
    if not args.keys and not args.config:
        parser.error("give a CONFIG file (or --keys)")
    return args


def main(argv=None):
    args = parse_args(argv)
    quiet_third_party_warnings()  # an entry point: paddle is imported with the registries
    logger = logging.getLogger("paddlevideo")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    from ..utils.config import ConfigError, read_config

    try:
        if args.keys:
            from .describe import describe

            print("\n".join(describe()))
            return 0
        cfg, origins = read_config(args.config, args.override)
    except ConfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    if args.origins:
        from .describe import with_origins

        print("\n".join(with_origins(cfg, origins)))
    else:
        import yaml

        from ..utils.config import to_plain

        print(yaml.safe_dump(to_plain(cfg), sort_keys=False, width=120), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
