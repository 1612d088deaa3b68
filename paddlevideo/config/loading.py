"""Read a config the way every entry point does (its files, ``-o`` overrides, resolution), and write it back;
docs/config.md has the rules."""

import functools
import operator
import os

import yaml

from ..common.errors import ConfigError
from ..common.logger import get_logger
from ..common.safe_yaml import load_yaml
from . import derive, schema as s, validate
from .attrdict import DEFAULTS, DERIVED, AttrDict, lookup, to_attr, to_plain
from .inherit import read_config_file


def get_config(path, overrides=None, show=True):
    """The resolved config (:class:`AttrDict`) of the YAML file ``path`` and its ``_BASE_`` files, with ``main.py
    -o`` style ``overrides`` (``["A.B.c=value", ...]``, values parsed as YAML); ``show`` logs it. Raises
    :class:`ConfigError`: a missing or unparsable file or base, an inheritance cycle, a bad override path, an unknown
    key, a wrong type or value, keys that disagree."""
    cfg, _ = read_config(path, overrides)
    if show:
        log_config(cfg)
    return cfg


def read_config(path, overrides=None):
    """:func:`get_config` without the logging, returning ``(cfg, origins)``: ``origins`` maps each key path
    (a tuple of strings) to where it was set (a file, ``-o``, ``default`` or ``derived from <key>``)."""
    data, origins = read_config_file(path)
    cfg = override_config(to_attr(data), overrides, origins)
    return _resolve(cfg, origins), origins


def validate_config(cfg):
    """A resolved copy (:class:`AttrDict`) of ``cfg``, a config built in code, checked as :func:`get_config` checks a
    file (``cfg`` itself is not modified). Raises ConfigError: unknown key, wrong type or value, keys that disagree."""
    return _resolve(to_attr(cfg), {})  # to_attr copies every mapping and list


def _resolve(cfg, origins):
    """Schema check, defaults and derived keys, then the checks that need them (in place)."""
    validate.check(cfg, origins, required=False)
    object.__setattr__(cfg, DEFAULTS, derive.fill_defaults(cfg, origins))
    object.__setattr__(cfg, DERIVED, derive.derive(cfg, origins))
    validate.check(cfg, origins, required=True)
    derive.check_agreement(cfg, origins)
    return cfg


def require(cfg, paths, purpose):
    """Raise a :class:`ConfigError` naming the first of ``paths`` (dotted) that ``cfg`` lacks and the ``purpose``
    that needs it (``"training"``, ``"--test"``)."""
    for path in paths:
        if lookup(cfg, path) is None:
            raise ConfigError(f"the config has no {path}, which {purpose} needs; add it to the config "
                              "(see configs/recognition/timesformer/ for complete ones)")


# --- -o overrides ------------------------------------------------------------------------------------------

def parse_overrides(overrides):
    """Split ``["A.B.c=1", ...]`` into ``[(["A", "B", "c"], 1), ...]``; a malformed item is an error."""
    parsed = []
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like KEY.PATH=value")
        key, text = item.split("=", 1)
        path = key.strip().split(".")
        if not all(path):
            raise ConfigError(f"override '{item}' has an empty key in its path")
        try:
            value = load_yaml(text) if text.strip() else ""
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or " ".join(str(err).split())
            raise ConfigError(f"override '{item}': its value is not valid YAML ({problem}); "
                              "quote a text value, e.g. KEY='[x'") from None
        parsed.append((path, to_attr(value)))
    return parsed


def override_config(cfg, overrides, origins=None):
    """Apply ``-o`` style overrides in place (docs/config.md, "Overrides") and return ``cfg``, not checked
    (:func:`get_config` checks). ``origins`` (a dict) records each overridden path as set by ``-o``."""
    for path, value in parse_overrides(overrides):
        if origins is not None:
            origins[tuple(path)] = "-o"
        node = cfg
        for depth, key in enumerate(path[:-1]):
            node = _child(node, key, path[: depth + 1])
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"override '{'.'.join(path)}': '{'.'.join(path[:-1])}' is a value, not a section")
        node[_list_index(node, path[-1], path) if isinstance(node, list) else path[-1]] = value
    return cfg


def _list_index(node, key, path):
    if not key.lstrip("-").isdigit() or not -len(node) <= int(key) < len(node):
        raise ConfigError(f"override '{'.'.join(path)}': '{key}' is not an index of a list of {len(node)}")
    return int(key)


def _child(node, key, path_so_far):
    if isinstance(node, list):
        return node[_list_index(node, key, path_so_far)]
    if not isinstance(node, dict) or key not in node:
        hint = validate.suggest(key, node if isinstance(node, dict) else (), tuple(path_so_far[:-1]))
        raise ConfigError(f"override path '{'.'.join(path_so_far)}' does not exist in the config"
                          + (hint or "; check the key spelling"))
    if node[key] is None:  # an operator written without keys ('- RandomCrop:') takes keys from -o
        node[key] = AttrDict()
    return node[key]


# --- writing and logging -----------------------------------------------------------------------------------

def save_config(cfg, path):
    """Write ``cfg`` as YAML that :func:`get_config` reads back unchanged, without the keys resolution filled in
    that still hold that value (docs/config.md, "Configs built in code"); returns ``str(path)``."""
    plain = _without_filled(cfg, (DERIVED, DEFAULTS))
    for mode in s.PIPELINE_MODES:  # a crop left with no keys is written '- RandomCrop:' again
        for item in derive.transform_items(plain, mode):
            item.update({name: None for name, params in item.items() if params == {}})
    os.makedirs(os.path.dirname(os.path.abspath(str(path))), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(plain, f, sort_keys=False)
    return str(path)


def _without_filled(cfg, records):
    """``cfg`` as plain data without the keys of ``records`` that still hold the value resolution gave them."""
    plain = to_plain(cfg)
    for path, value in [item for record in records for item in getattr(cfg, record, {}).items()]:
        try:
            node = functools.reduce(operator.getitem, path[:-1], plain)
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(node, dict) and path[-1] in node and node[path[-1]] == value:
            del node[path[-1]]
    return plain


def log_config(cfg, indent=0):
    """Log the config one key per line, nested sections indented; the engine defaults resolution filled in are left
    out (the log shows the config as written, with its derived keys)."""
    logger = get_logger()
    for key, value in (_without_filled(cfg, (DEFAULTS,)) if indent == 0 else cfg).items():
        listed = isinstance(value, list) and value and isinstance(value[0], dict)  # transforms: a list of sections
        if not (listed or isinstance(value, dict)):
            logger.info("%s%s: %s", " " * indent, key, value)
            continue
        logger.info("%s%s:", " " * indent, key)
        for section in value if listed else [value]:
            log_config(section, indent + 4)
