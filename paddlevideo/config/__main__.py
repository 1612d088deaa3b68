"""Print the config a file resolves to, after ``_BASE_`` inheritance, ``-o`` overrides, defaults and derivation.

    python -m paddlevideo.config configs/recognition/timesformer/timesformer_hr_k400_videos.yaml
    python -m paddlevideo.config CONFIG -o MODEL.backbone.num_seg=16 --origins
    python -m paddlevideo.config --keys          # every key the schema knows, with its rule and default

A bad config ends with one line ``paddlevideo.config: error: ...`` and exit code 1.
"""

import argparse
import sys

from ..runtime import quiet_third_party_warnings
from ..common.logger import log_to_stderr
from . import schema as s
from .inherit import origin_of
from .validate import dotted

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
    log_to_stderr()  # stdout carries the config
    from .loading import ConfigError, read_config, to_plain

    try:
        if args.keys:
            print("\n".join(describe()))
            return 0
        cfg, origins = read_config(args.config, args.override)
    except ConfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    if args.origins:
        print("\n".join(with_origins(cfg, origins)))
    else:
        import yaml

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
            for key, item in keys.items():
                lines += _value(item.spec, (key,), kinds, item.default, required=item.required, indent=4,
                                context=kinds[kind][0] + ".")
        for key, why in s.IGNORED.get(kind, {}).items():
            lines.append(f"  (any) {key}: ignored, {why}")
        for old, new in s.RENAMED.get(kind, {}).items():
            lines.append(f"  (any) {old}: PaddleVideo's old name of {new}, read as {new}")
    return lines


def _line(path, text, default=s.MISSING, doc="", required=False, indent=0):
    shown = "" if default is s.MISSING else f" [default {default!r}]"
    return (" " * indent + f"{dotted(path)}: " + ("required, " if required else "") + text + shown
            + (f"  - {doc}" if doc else ""))


def _section(spec, path, lines, kinds, indent=0):
    for key, field in spec.fields.items():
        lines += _value(field.spec, path + (key,), kinds, field.default, field.doc, indent=indent)
    for key, why in spec.ignored.items():
        lines.append(_line(path + (key,), f"ignored ({why})", indent=indent))


def _value(spec, path, kinds, default=s.MISSING, doc="", required=False, indent=0, context=""):
    if isinstance(spec, s.Section):
        lines = [_line(path, "a mapping", doc=doc, required=required, indent=indent)]
        _section(spec, path, lines, kinds, indent)
        return lines
    if isinstance(spec, s.Transforms):
        kinds.setdefault(spec.kind, []).append(context + dotted(path) + " items")
        return [_line(path, f"a list of one-key mappings {{{s.KIND_NAMES[spec.kind]}: keys}}", doc=doc, indent=indent)]
    if isinstance(spec, s.Component):
        kinds.setdefault(spec.kind, []).append(context + dotted(path))
        word = s.KIND_NAMES[spec.kind]
        return [_line(path, f"{'an' if word[0] in 'aeiou' else 'a'} {word}, named by `{spec.name_key}`", doc=doc,
                      required=required, indent=indent)]
    if isinstance(spec, s.Either):
        first, *rest = _value(spec.mapping, path, kinds, indent=indent, context=context)
        return [_line(path, f"{spec.rule.text}, or {first.split(': ', 1)[1]}", default, doc, required, indent)] + rest
    return [_line(path, spec.text, default, doc, required, indent)]


if __name__ == "__main__":
    sys.exit(main())
