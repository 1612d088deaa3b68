"""YAML configs as attribute dicts, with ``-o A.B.c=value`` overrides as in PaddleVideo."""

import copy
import os
import re

import yaml

from .errors import UserError
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


def load_yaml(text_or_stream):
    """Parse YAML with the project's loader (scientific notation without a dot is a float)."""
    return yaml.load(text_or_stream, Loader=_Loader)


class ConfigError(UserError, ValueError):
    """A config file or override is wrong; the message names the file or key."""


class AttrDict(dict):
    """A dict whose keys are also attributes: ``cfg.MODEL.backbone.name``."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"config has no key '{key}'") from None

    def __setattr__(self, key, value):
        self[key] = value

    def __deepcopy__(self, memo):
        return AttrDict({k: copy.deepcopy(v, memo) for k, v in self.items()})


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


def override_config(cfg, overrides):
    """Apply ``-o`` style overrides in place and return ``cfg``.

    Every part of the path but the last must exist (a list is indexed by a number); the last may
    be new, so optional keys can be switched on from the command line.
    """
    for path, value in parse_overrides(overrides):
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
        raise ConfigError(f"override path '{where}' does not exist in the config; check the key spelling")
    return node[key]


def get_config(path, overrides=None, show=True):
    """Read a YAML config into an :class:`AttrDict` and apply overrides.

    Args:
        path: the YAML file.
        overrides: ``["A.B.c=value", ...]`` (values parsed as YAML), as ``main.py -o`` gives.
        show: log the final config.
    Raises:
        ConfigError: missing or unparsable file, bad override path.
    """
    if not os.path.isfile(path):
        raise ConfigError(f"config file '{path}' not found; pass an existing YAML file with -c")
    with open(path, encoding="utf-8") as f:
        try:
            data = load_yaml(f)
        except yaml.YAMLError as err:
            raise ConfigError(f"config file '{path}' is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of sections (MODEL, DATASET, ...)")
    cfg = _to_attr(data)
    override_config(cfg, overrides)
    if show:
        log_config(cfg)
    return cfg


def to_plain(obj):
    """An :class:`AttrDict` tree as plain dicts and lists (for YAML/JSON dumps)."""
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    return obj


def save_config(cfg, path):
    """Write ``cfg`` as YAML that :func:`get_config` reads back unchanged; returns ``str(path)``."""
    folder = os.path.dirname(os.path.abspath(str(path)))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_plain(cfg), f, sort_keys=False)
    return str(path)


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
