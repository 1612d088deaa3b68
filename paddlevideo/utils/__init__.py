"""PaddleVideo's import path, kept for its users' scripts and tools: ``from paddlevideo.utils import get_config``
(and ``get_logger``, ``setup_logger``, ``Registry``, ``save``, ``load``) gives this project's objects.

Nothing in the library imports this package: the helpers live in :mod:`paddlevideo.common` and the config in
:mod:`paddlevideo.config`, and this package only names them again, from above both.
"""

from ..common.errors import ConfigError
from ..common.logger import get_logger, setup_logger
from ..common.registry import Registry, build_from_config
from ..common.save_load import load, save
from ..config import AttrDict, get_config, override_config, parse_overrides, validate_config

__all__ = ["AttrDict", "ConfigError", "Registry", "build_from_config", "get_config", "get_logger", "load",
           "override_config", "parse_overrides", "save", "setup_logger", "validate_config"]
