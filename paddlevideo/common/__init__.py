"""Generic helpers every floor of the library uses: errors, logging, registries, files written whole, checkpoint
I/O, value rules, safe readers, the CPU's features. Nothing here knows the config, a model or a tool.

Import a helper from its module (``from paddlevideo.common.errors import InputError``). PaddleVideo's import paths
(``from paddlevideo.utils import get_config``) are kept by :mod:`paddlevideo.utils`, which stands above the config.
"""
