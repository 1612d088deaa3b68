"""Print the config a file resolves to, after ``_BASE_`` inheritance, ``-o`` overrides, defaults and derivation.

    python -m paddlevideo.config configs/recognition/timesformer/timesformer_hr_k400_videos.yaml
    python -m paddlevideo.config CONFIG -o MODEL.backbone.num_seg=16 --origins
    python -m paddlevideo.config --keys          # every key the schema knows, with its rule and default

A bad config ends with one line ``python -m paddlevideo.config: error: ...`` and exit code 1 (``cli.run``,
as every tool).
"""

import argparse
import sys

import yaml

from ..cli import add_debug_flag, run
from ..common.logger import log_to_stderr
from . import schema as s
from .inherit import origin_of
from .loading import read_config, to_plain
from .validate import dotted

PROG = "python -m paddlevideo.config"


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="YAML config file")
    parser.add_argument("-o", "--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config entries, as main.py -o")
    parser.add_argument("--origins", action="store_true",
                        help="print one 'key: value  # where it was set' line per value instead of YAML")
    parser.add_argument("--keys", action="store_true", help="list every key the schema knows and exit")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if not args.keys and not args.config:
        parser.error("give a CONFIG file (or --keys)")
    log_to_stderr()  # stdout carries the config
    if args.keys:
        print("\n".join(describe()))
        return 0
    cfg, origins = read_config(args.config, args.override)
    if args.origins:
        print("\n".join(with_origins(cfg, origins)))
    else:
        print(yaml.safe_dump(to_plain(cfg), sort_keys=False, width=120), end="")
    return 0


def with_origins(node, origins, path=()):
    """``path: value  # where it was set`` for every value of the config ``node`` (lists shown whole)."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from with_origins(value, origins, path + (key,))
        return
    where = origin_of(origins, path)
    yield f"{dotted(path)}: {node!r}" + (f"  # {where}" if where else "")


# --- --keys: the schema as text ----------------------------------------------------------------------------

def describe():
    """Every engine key (``path: rule [default] - doc``), then each component kind with the keys of each class
    a config can name (from the constructors' signatures)."""
    lines, kinds, done = [], {}, set()
    _section(s.top_level(), (), lines, kinds)
    while set(kinds) - done:  # describing a component may reveal another kind (head -> loss)
        kind = next(k for k in kinds if k not in done)
        done.add(kind)
        word = s.KIND_NAMES[kind]
        lines += ["", f"{word}{'es' if word.endswith('s') else 's'} ({', '.join(dict.fromkeys(kinds[kind]))}):"]
        for name in s.registry(kind):
            keys = s.component_keys(kind, name)
            lines.append(f"  {name}" + ("" if keys else ": no keys"))
            _section(s.Section(keys), (), lines, kinds, indent=4, context=kinds[kind][0] + ".")
        for key, why in s.IGNORED.get(kind, {}).items():
            lines.append(f"  (any) {key}: ignored, {why}")
        for old, new in s.RENAMED.get(kind, {}).items():
            lines.append(f"  (any) {old}: PaddleVideo's old name of {new}, read as {new}")
    return lines


def _line(path, text, default=s.MISSING, doc="", required=False, indent=0):
    shown = "" if default is s.MISSING else f" [default {default!r}]"
    return (" " * indent + f"{dotted(path)}: " + ("required, " if required else "") + text + shown
            + (f"  - {doc}" if doc else ""))


def _section(spec, path, lines, kinds, indent=0, context=""):
    """Add the lines of the keys of ``spec`` (a nested section's keys after its own line) to ``lines``, and each
    component's kind to ``kinds`` with where it is named (``context`` + its path)."""
    for key, field in spec.fields.items():
        nested = field.spec.mapping if isinstance(field.spec, s.Either) else field.spec
        if isinstance(nested, (s.Component, s.Transforms)):
            items = " items" if isinstance(nested, s.Transforms) else ""
            kinds.setdefault(nested.kind, []).append(context + dotted(path + (key,)) + items)
        shown = s.MISSING if isinstance(field.spec, (s.Section, s.Component, s.Transforms)) else field.default
        lines.append(_line(path + (key,), field.spec.text, shown, field.doc, field.required, indent))
        if isinstance(nested, s.Section):
            _section(nested, path + (key,), lines, kinds, indent)
    for key, why in spec.ignored.items():
        lines.append(_line(path + (key,), f"ignored ({why})", indent=indent))


if __name__ == "__main__":
    sys.exit(run(PROG, main))
