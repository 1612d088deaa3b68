"""Shared utilities: configuration, registries, logging, checkpoint I/O."""

from .config import AttrDict, ConfigError, get_config, override_config, parse_overrides, validate_config
from .logger import get_logger, setup_logger
from .registry import Registry, build_from_config

__all__ = [
    "AttrDict",
    "ConfigError",
    "Registry",
    "build_from_config",
    "get_config",
    "get_logger",
    "override_config",
    "parse_overrides",
    "setup_logger",
    "validate_config",
]
