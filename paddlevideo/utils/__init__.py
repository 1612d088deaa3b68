"""Generic helpers: errors, logging, registries, files written whole, checkpoint I/O, value rules, safe readers.
Nothing here knows the config: that lives in :mod:`paddlevideo.config`."""

import importlib

from .errors import ConfigError
from .logger import get_logger, setup_logger
from .registry import Registry, build_from_config

# PaddleVideo's import path, kept for users: ``from paddlevideo.utils import get_config`` (as PaddleVideo's tools
# and this project's earlier README write it) gives paddlevideo.config's objects. Looked up on first use
# (PEP 562), so that utils, which the config package imports, does not import it back.
CONFIG_NAMES = ("AttrDict", "get_config", "override_config", "parse_overrides", "validate_config")


def __getattr__(name):
    if name in CONFIG_NAMES:
        return getattr(importlib.import_module("paddlevideo.config"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ConfigError", "Registry", "build_from_config", "get_logger", "setup_logger", *CONFIG_NAMES]
