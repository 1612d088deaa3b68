"""Config files that inherit from base files: PaddleDetection's ``_BASE_`` convention (docs/config.md,
"Inheritance"). A missing base and a file that includes itself are one-line errors naming the chain of files."""

import os

import yaml

from ..common.errors import ConfigError
from ..common.safe_yaml import load_yaml

BASE_KEY = "_BASE_"


def read_config_file(path):
    """``(data, origins)``: ``path`` and its ``_BASE_`` files merged into one plain mapping, and the file that set
    each key path (a tuple; lists count as leaves). Raises :class:`ConfigError`: a missing or unparsable file, a bad
    ``_BASE_`` entry, an inheritance cycle."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file '{path}' not found; pass an existing YAML file with -c")
    origins = {}
    return _load(os.path.abspath(path), (), origins), origins


def merge(base, child):
    """``child`` merged over ``base``: a mapping over a mapping key by key, anything else replaces whole; neither
    argument is modified."""
    if not (isinstance(base, dict) and isinstance(child, dict)):
        return child
    return {**base, **{key: merge(base[key], value) if key in base else value for key, value in child.items()}}


def show_path(path):
    """``path`` relative to the working directory when it lies below it, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _chain(files):
    return " -> ".join(show_path(f) for f in files)


def _load(path, chain, origins):
    """The mapping of the file ``path`` merged over its bases' (``chain``: the files that include it)."""
    if path in chain:
        raise ConfigError(f"config inheritance cycle: {_chain(chain + (path,))}; remove one of these _BASE_ entries")
    data = _read_mapping(path, chain)
    merged = {}
    for base in _base_paths(data.pop(BASE_KEY, None), path, chain):
        merged = merge(merged, _load(base, chain + (path,), origins))
    _record_origins(data, (), show_path(path), origins)
    return merge(merged, data)


def _read_mapping(path, chain):
    name = f"config file '{show_path(path)}'" + (f" (a _BASE_ of {_chain(chain)})" if chain else "")
    try:
        with open(path, encoding="utf-8") as f:
            data = load_yaml(f)
    except yaml.YAMLError as err:
        raise ConfigError(f"{name} is not valid YAML: {' '.join(str(err).split())}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{name} is not UTF-8 text ({err.reason} at byte {err.start}); a config is a YAML text "
                          "file") from None
    except OSError as err:
        raise ConfigError(f"{name} cannot be read: {err.strerror}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{name} must hold a mapping of sections (MODEL, DATASET, ...)")
    return data or {}


def _base_paths(entries, path, chain):
    """The absolute paths named by a ``_BASE_`` entry (a path or a list of paths), checked to exist."""
    entries = [entries] if isinstance(entries, str) else [] if entries is None else entries
    here = _chain(chain + (path,))
    if not isinstance(entries, list) or not all(isinstance(e, str) and e.strip() for e in entries):
        raise ConfigError(f"{BASE_KEY} in {here} must be a list of file paths, got {entries!r}")
    paths = [os.path.normpath(os.path.join(os.path.dirname(path), os.path.expanduser(e.strip()))) for e in entries]
    for entry, base in zip(entries, paths):
        if not os.path.isfile(base):
            raise ConfigError(f"base config '{entry}' not found (looked for '{show_path(base)}', "
                              f"the {BASE_KEY} of {here}); paths are relative to the file that names them")
    return paths


def _record_origins(node, prefix, source, origins):
    for key, value in node.items() if isinstance(node, dict) else ():
        origins[prefix + (str(key),)] = source
        _record_origins(value, prefix + (str(key),), source, origins)


def origin_of(origins, path):
    """Where the value at ``path`` (a tuple of keys; list indices too) was set, from the longest recorded prefix, or
    None."""
    path = tuple(str(p) for p in path)
    return next((origins[path[:end]] for end in range(len(path), 0, -1) if path[:end] in origins), None)
