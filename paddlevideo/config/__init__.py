"""How a config file becomes the config the engine reads (docs/config.md; the modules: docs/design.md):
:func:`get_config` for files, :func:`validate_config` for configs built in code; ``python -m paddlevideo.config
CONFIG`` prints one. Importing this package imports nothing heavy; paddle is imported when a config is first checked.
"""

from ..common.errors import ConfigError
from .attrdict import AttrDict, to_plain
from .loading import (get_config, log_config, override_config, parse_overrides, read_config, require, save_config,
                      validate_config)

__all__ = ["AttrDict", "ConfigError", "get_config", "log_config", "override_config", "parse_overrides", "read_config",
           "require", "save_config", "to_plain", "validate_config"]
