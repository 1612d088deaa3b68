"""Check a config against the schema: unknown keys (with the closest known one), types, ranges, choices. The first
problem is a one-line :class:`ConfigError` naming the key path (``PIPELINE.train.transform.3.RandomCrop.target_size``,
the ``-o`` spelling), the value, what is allowed, and where it was set."""

import difflib

from ..common.errors import ConfigError
from ..common.logger import get_logger
from . import schema as s
from .attrdict import AttrDict
from .inherit import origin_of


def check(cfg, origins=None, required=True):
    """Validate ``cfg`` in place against :func:`schema.top_level` (ignored PaddleVideo keys dropped and old names
    moved, a warning each; the top-level keys put in the schema's order). ``origins`` (``{key path: source}``) names
    where a bad value was set; ``required`` also reports constructor arguments without a default that the config does
    not give. Raises :class:`ConfigError`: the first problem found."""
    spec = s.top_level()
    _Walker(origins or {}, required).section(spec, cfg, ())
    cfg.update({key: cfg.pop(key) for key in spec.fields if key in cfg})


def dotted(path):
    return ".".join(str(p) for p in path)


def suggest(key, known, prefix=()):
    """``"; did you mean `A.b`?"`` for the key of ``known`` closest to ``key``, ignoring case: difflib's best match,
    else the one key that starts with it (``avg`` -> ``avg_type``); ``""`` if none is close."""
    lowered = {str(k).lower(): str(k) for k in known}
    wanted = str(key).lower()
    close = difflib.get_close_matches(wanted, list(lowered), n=1, cutoff=0.6)
    extended = [k for k in lowered if k.startswith(wanted) and len(wanted) >= 3]
    close = close[0] if close else extended[0] if len(extended) == 1 else None
    return f"; did you mean `{dotted(prefix + (lowered[close],))}`?" if close else ""


class _Walker:
    def __init__(self, origins, required):
        self.origins, self.required = origins, required

    def fail(self, path, message):
        where = origin_of(self.origins, path)
        suffix = "" if where is None else " (set by -o)" if where == "-o" else f" (set in {where})"
        raise ConfigError(message + suffix)

    def warn(self, path, message):
        where = origin_of(self.origins, path)
        get_logger().warning("config: %s%s", message, "" if where is None else f" (set in {where})")

    def _mapping(self, node, path):
        if not isinstance(node, dict):
            self.fail(path, f"{dotted(path) or 'the config'} must be a mapping of keys, got {node!r}")

    def _drop_ignored(self, node, path, ignored):
        for key in [k for k in node if k in ignored]:
            self.warn(path + (key,), f"{dotted(path + (key,))} is ignored ({ignored[key]})")
            del node[key]

    def section(self, spec, node, path):
        self._mapping(node, path)
        self._drop_ignored(node, path, spec.ignored)
        for key in list(node):
            if key not in spec.fields:
                what = f"unknown key {dotted(path + (key,))}" if path else f"unknown top-level key {key}"
                self.fail(path + (key,), what + (suggest(key, spec.fields, path) or
                                                 f"; known keys: {', '.join(spec.fields)}"))
            node[key] = self.value(spec.fields[key].spec, node[key], path + (key,))
        return node

    def component(self, spec, node, path, name=None):
        """A mapping naming its class in ``spec.name_key``, or a transform item's keys (its operator ``name`` given:
        ``path`` is ``PIPELINE.train.transform.3.RandomCrop``; ``node`` is None for ``- RandomFlip:``)."""
        given = name is not None
        node = AttrDict() if node is None else node
        self._mapping(node, path)
        classes = s.registry(spec.kind)
        kind = s.KIND_NAMES[spec.kind]
        if not given and spec.name_key not in node:
            self.fail(path, f"{dotted(path)} needs `{spec.name_key}` naming the {kind} (one of {', '.join(classes)})")
        name, name_path = (name, path) if given else (node[spec.name_key], path + (spec.name_key,))
        if not isinstance(name, str) or name not in classes:
            self.fail(name_path, f"{dotted(path[:-1] if given else name_path)}: unknown {kind} {name!r}" +
                      (suggest(name, classes) or f"; known: {', '.join(classes)}"))
        keys = s.component_keys(spec.kind, name)
        self._drop_ignored(node, path, {k: v for k, v in s.IGNORED.get(spec.kind, {}).items() if k not in keys})
        self._rename(node, path, keys, s.RENAMED.get(spec.kind, {}))
        for key in [k for k in node if given or k != spec.name_key]:
            key_path = path + (key,)
            if key in spec.engine_args:
                self.fail(key_path, f"{dotted(key_path)}: {name}'s '{key}' is set by the engine, not by the config")
            if key not in keys:
                self.fail(key_path, f"unknown key {dotted(key_path)}: {name} got an unexpected keyword argument "
                                    f"'{key}'" + (suggest(key, keys, path) or f"; its keys are {', '.join(keys)}"))
            node[key] = self.value(keys[key].spec, node[key], key_path, f"{kind} {name}")
        missing = [k for k, key in keys.items() if self.required and key.required and k not in node]
        if missing:
            self.fail(path, f"{dotted(path)} ({kind} {name}) needs `{missing[0]}`: it has no default")
        return node

    def _rename(self, node, path, keys, renamed):
        for old, new in [(old, new) for old, new in renamed.items() if old in node and new in keys]:
            if new in node and node[new] != node[old]:
                self.fail(path + (old,), f"{dotted(path + (old,))} ({node[old]!r}) is PaddleVideo's old name of "
                                         f"{new}, which is also set ({node[new]!r}); keep only {new}")
            self.warn(path + (old,), f"{dotted(path + (old,))} is PaddleVideo's old name of {new}; read as {new}")
            node[new] = node.pop(old)

    def transforms(self, spec, node, path):
        if not isinstance(node, list):
            self.fail(path, f"{dotted(path)} must be a list of operators like '- RandomFlip:', got {node!r}")
        for index, item in enumerate(node):
            item_path = path + (index,)
            if not isinstance(item, dict) or len(item) != 1:
                self.fail(item_path, f"{dotted(item_path)} must be a one-key mapping like 'RandomFlip:' or "
                                     f"'RandomCrop: {{target_size: 224}}', got {item!r}")
            (name, params), = item.items()
            checked = self.component(s.Component(spec.kind), params, item_path + (name,), name=name)
            item[name] = None if params is None and not checked else checked  # '- RandomFlip:' stays as written
        return node

    def value(self, spec, value, path, owner=None):
        check = {s.Section: self.section, s.Component: self.component, s.Transforms: self.transforms}.get(type(spec))
        if check:  # an empty section ('METRIC:') is no section: the engine uses its defaults
            return value if value is None else check(spec, value, path)
        if isinstance(spec, s.Either):
            if isinstance(value, dict):
                return self.value(spec.mapping, value, path, owner)
            spec = spec.rule
        problem = spec(value)
        if problem:
            self.fail(path, f"{dotted(path)} {problem}" + (f" ({owner})" if owner else ""))
        return spec.convert(value)
