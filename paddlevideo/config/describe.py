"""Text views of the schema and of a resolved config, for ``python -m paddlevideo.config``."""

from . import schema as s
from .inherit import origin_of
from .validate import dotted


def describe():
    """The schema as text: every engine key (``path: rule [default] - doc``), then each component kind
    with the keys of each class a config can name (from the constructors' signatures)."""
    lines, kinds, done = [], {}, set()
    _section(s.top_level(), (), lines, kinds)
    while set(kinds) - done:  # describing a component may reveal another kind (head -> loss)
        kind = next(k for k in kinds if k not in done)
        done.add(kind)
        lines += ["", f"{_plural(s.KIND_NAMES[kind])} ({', '.join(dict.fromkeys(kinds[kind]))}):"]
        for name in s.registry(kind):
            keys = s.component_keys(kind, name)
            lines.append(f"  {name}" + ("" if keys else ": no keys"))
            for key, item in keys.items():
                lines += _value(item.spec, (key,), kinds, item.default, required=item.required, indent=4,
                                context=kinds[kind][0] + ".")
        for key, ignored in s.IGNORED.get(kind, {}).items():
            lines.append(f"  (any) {key}: ignored, {ignored.reason}")
        for old, new in s.RENAMED.get(kind, {}).items():
            lines.append(f"  (any) {old}: PaddleVideo's old name of {new}, read as {new}")
    return lines


def _plural(word):
    return word + ("es" if word.endswith("s") else "s")


def _a(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def _line(path, text, default=s.MISSING, doc="", required=False, indent=0):
    shown = "" if default is s.MISSING else f" [default {default!r}]"
    return (" " * indent + f"{dotted(path)}: " + ("required, " if required else "") + text + shown
            + (f"  - {doc}" if doc else ""))


def _section(spec, path, lines, kinds, indent=0):
    for key, field in spec.fields.items():
        lines += _value(field.spec, path + (key,), kinds, field.default, field.doc, indent=indent)
    for key, ignored in spec.ignored.items():
        lines.append(_line(path + (key,), f"ignored ({ignored.reason})", indent=indent))


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
        return [_line(path, f"{_a(s.KIND_NAMES[spec.kind])}, named by `{spec.name_key}`", doc=doc,
                      required=required, indent=indent)]
    if isinstance(spec, s.Either):
        first, *rest = _value(spec.mapping, path, kinds, indent=indent, context=context)
        return [_line(path, f"{spec.rule.text}, or {first.split(': ', 1)[1]}", default, doc, required, indent)] + rest
    return [_line(path, spec.text, default, doc, required, indent)]


def with_origins(cfg, origins):
    """``path: value  # where it was set`` for every value of ``cfg`` (lists shown whole)."""
    lines = []

    def walk(node, path):
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, path + (key,))
            return
        where = origin_of(origins, tuple(str(p) for p in path))
        lines.append(f"{dotted(path)}: {node!r}" + (f"  # {where}" if where else ""))

    walk(cfg, ())
    return lines
