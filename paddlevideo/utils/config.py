"""YAML configs as attribute dicts: inheritance, ``-o`` overrides, derived keys and the schema check.

:func:`get_config` reads a config the way every entry point does:

1. the file and its ``_BASE_`` files (PaddleDetection's convention, :mod:`paddlevideo.config.inherit`):
   ``_BASE_: [../_base_/a.yaml, b.yaml]`` with paths relative to the including file; later bases
   override earlier ones, the including file overrides its bases; mappings merge recursively, lists
   and scalars replace whole. A flat PaddleVideo config (no ``_BASE_``) reads as it always did;
2. ``-o A.B.c=value`` overrides (values parsed as YAML; list items by index, as in PaddleVideo);
3. the schema check (:mod:`paddlevideo.config.validate`): unknown keys (with the closest known one),
   wrong types, impossible values; PaddleVideo keys this project ignores are dropped with a warning;
4. derived keys (:mod:`paddlevideo.config.derive`): the frame count, image size and feature width are
   stated once in ``MODEL.backbone`` and the test views, export input, pipelines and head follow it;
   stated values that would break the model are an error naming both keys.

Every problem is a one-line :class:`ConfigError` naming the file, key and value.
``python -m paddlevideo.config CONFIG [-o ...]`` prints the resolved config.
"""

import copy
import difflib
import os
import re

import yaml

from .errors import ConfigError
from .logger import get_logger


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-6`` (no dot) as a float, as config authors expect."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


# A config is data from a file that may come from elsewhere: the loader is yaml's SafeLoader (no tag builds a
# Python object), and a document whose aliases repeat nodes into more values than this is refused, since every
# step after loading (merge, check, AttrDict) copies the expanded tree: ten nested lists of ten aliases are
# 10**9 values from a 1 kB file. A full PaddleVideo config has a few hundred.
MAX_CONFIG_VALUES = 100_000


class ConfigTooLarge(yaml.YAMLError):
    """A YAML document that expands (through aliases) to more than :data:`MAX_CONFIG_VALUES` values."""


def load_yaml(text_or_stream):
    """Parse YAML with the project's loader (scientific notation without a dot is a float; no Python tags).

    Raises:
        yaml.YAMLError: not YAML, a tag that would build an object, nesting too deep to parse, or more than
            :data:`MAX_CONFIG_VALUES` values once aliases are expanded (:class:`ConfigTooLarge`).
    """
    try:
        data = yaml.load(text_or_stream, Loader=_Loader)
    except RecursionError:
        raise ConfigTooLarge("its nesting is too deep to read") from None
    if _expanded_size(data) > MAX_CONFIG_VALUES:
        raise ConfigTooLarge(f"it expands to more than {MAX_CONFIG_VALUES} values (aliases '*name' repeating "
                             "anchored '&name' nodes); a config needs a few hundred")
    return data


def _expanded_size(data):
    """Values in ``data`` counting every alias as the copy later steps make of it; linear in distinct nodes."""
    sizes, stack = {}, [(data, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, (dict, list)) or (id(node) in sizes and not children_done):
            continue
        children = list(node.values()) if isinstance(node, dict) else node
        if children_done:
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
            continue
        sizes[id(node)] = MAX_CONFIG_VALUES + 1  # a node met again while open contains itself: refuse it too
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    return sizes.get(id(data), 1)


class MissingKeyError(ConfigError, AttributeError):
    """A key the code reads is absent from the config (an AttributeError too, so ``hasattr`` still works)."""


class AttrDict(dict):
    """A dict whose keys are also attributes: ``cfg.MODEL.backbone.name``."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise MissingKeyError(f"the config has no key '{key}' where it is needed; add it to the config "
                                  "(see configs/recognition/timesformer/ for complete ones)") from None

    def __setattr__(self, key, value):
        self[key] = value

    def __deepcopy__(self, memo):
        clone = AttrDict({k: copy.deepcopy(v, memo) for k, v in self.items()})
        if DERIVED in self.__dict__:
            object.__setattr__(clone, DERIVED, dict(self.__dict__[DERIVED]))
        return clone


# Attribute (not key) of a resolved config: ``{key path: value}`` of the keys get_config derived, so that
# save_config can leave out the ones that still hold their derived value (they follow their source again).
DERIVED = "_derived_keys"


def _to_attr(obj):
    if isinstance(obj, dict):
        return AttrDict({k: _to_attr(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return [_to_attr(v) for v in obj]
    return obj


def _parse_value(text):
    return load_yaml(text) if text.strip() else ""


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
        parsed.append((path, _to_attr(_parse_value(text))))
    return parsed


def override_config(cfg, overrides, origins=None):
    """Apply ``-o`` style overrides in place and return ``cfg`` (not checked: :func:`get_config` checks).

    Every part of the path but the last must exist (a list is indexed by a number; an operator written
    without keys, ``- RandomCrop:``, takes keys); the last may be new, so optional keys can be switched on
    from the command line. ``origins`` (a dict) records each overridden path as set by ``-o``.
    """
    for path, value in parse_overrides(overrides):
        if origins is not None:
            origins[tuple(path)] = "-o"
        node = cfg
        for depth, key in enumerate(path[:-1]):
            node = _child(node, key, path[: depth + 1])
        last = path[-1]
        if isinstance(node, list):
            node[_list_index(node, last, path)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"override '{'.'.join(path)}': '{'.'.join(path[:-1])}' is a value, not a section")
    return cfg


def _list_index(node, key, path):
    if not key.lstrip("-").isdigit() or not -len(node) <= int(key) < len(node):
        raise ConfigError(f"override '{'.'.join(path)}': '{key}' is not an index of a list of {len(node)}")
    return int(key)


def _child(node, key, path_so_far):
    where = ".".join(path_so_far)
    if isinstance(node, list):
        return node[_list_index(node, key, path_so_far)]
    if not isinstance(node, dict) or key not in node:
        close = closest_key(key, node) if isinstance(node, dict) else None
        hint = f"; did you mean `{'.'.join(path_so_far[:-1] + [close])}`?" if close else "; check the key spelling"
        raise ConfigError(f"override path '{where}' does not exist in the config{hint}")
    if node[key] is None:  # an operator written without keys ('- RandomCrop:') takes keys from -o
        node[key] = AttrDict()
    return node[key]


def closest_key(key, known):
    """The key of ``known`` closest to ``key``, ignoring case: difflib's best match, else the one key that
    starts with it (``avg`` -> ``avg_type``); None if none is close."""
    lowered = {str(k).lower(): str(k) for k in known}
    wanted = str(key).lower()
    close = difflib.get_close_matches(wanted, list(lowered), n=1, cutoff=0.6)
    if close:
        return lowered[close[0]]
    extended = [k for k in lowered if k.startswith(wanted) and len(wanted) >= 3]
    return lowered[extended[0]] if len(extended) == 1 else None


def get_config(path, overrides=None, show=True):
    """Read a YAML config (with its ``_BASE_`` files), apply overrides, check and resolve it.

    Args:
        path: the YAML file.
        overrides: ``["A.B.c=value", ...]`` (values parsed as YAML), as ``main.py -o`` gives.
        show: log the final config.
    Returns:
        the resolved config (:class:`AttrDict`): derived keys filled in, ignored PaddleVideo keys dropped.
    Raises:
        ConfigError: missing or unparsable file or base, inheritance cycle, bad override path, unknown
            key, wrong type or value, keys that disagree.
    """
    cfg, _ = read_config(path, overrides)
    if show:
        log_config(cfg)
    return cfg


def read_config(path, overrides=None):
    """:func:`get_config` without the logging, returning ``(cfg, origins)``: ``origins`` maps each key path
    (a tuple of strings) to where it was set (a file, ``-o``, or ``derived from <key>``)."""
    from ..config.inherit import read_config_file

    data, origins = read_config_file(path)
    cfg = _to_attr(data)
    override_config(cfg, overrides, origins)
    _resolve(cfg, origins)
    return cfg, origins


def validate_config(cfg):
    """Check and resolve a config built in code, as :func:`get_config` does for files.

    Returns a resolved copy (:class:`AttrDict`); ``cfg`` itself is not modified.
    Raises:
        ConfigError: unknown key, wrong type or value, keys that disagree.
    """
    return _resolve(_to_attr(copy.deepcopy(to_plain(cfg))), {})


def _resolve(cfg, origins):
    """Schema check, derivation, then the checks that need the derived keys (in place)."""
    from ..config import derive, validate

    validate.check(cfg, origins, required=False)
    object.__setattr__(cfg, DERIVED, derive.derive(cfg, origins))
    validate.check(cfg, origins, required=True)
    derive.check_agreement(cfg, origins)
    return cfg


def to_plain(obj):
    """An :class:`AttrDict` tree as plain dicts and lists (for YAML/JSON dumps)."""
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    return obj


def save_config(cfg, path):
    """Write ``cfg`` as YAML that :func:`get_config` reads back unchanged; returns ``str(path)``.

    Keys :func:`get_config` derived (e.g. the pipelines' ``num_seg``) and that still hold their derived
    value are left out, so after ``cfg.MODEL.backbone.num_seg = 16`` the saved file reads back as a
    consistent 16-frame config instead of one whose pipelines still say 8.
    """
    folder = os.path.dirname(os.path.abspath(str(path)))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(_without_derived(cfg), f, sort_keys=False)
    return str(path)


def _without_derived(cfg):
    plain = to_plain(cfg)
    for path, value in getattr(cfg, DERIVED, {}).items():
        node = plain
        try:
            for key in path[:-1]:
                node = node[key]
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(node, dict) and path[-1] in node and node[path[-1]] == value:
            del node[path[-1]]
    for mode in ("train", "valid", "test"):  # a crop left with no keys is written '- RandomCrop:' again
        for item in ((plain.get("PIPELINE") or {}).get(mode) or {}).get("transform") or []:
            for name, params in item.items():
                if params == {}:
                    item[name] = None
    return plain


def log_config(cfg, indent=0):
    """Log the config one key per line, nested sections indented."""
    logger = get_logger()
    for key, value in cfg.items():
        if isinstance(value, dict):
            logger.info("%s%s:", " " * indent, key)
            log_config(value, indent + 4)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            logger.info("%s%s:", " " * indent, key)
            for item in value:
                log_config(item, indent + 4)
        else:
            logger.info("%s%s: %s", " " * indent, key, value)
