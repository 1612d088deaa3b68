"""How a config file becomes the config the engine reads.

- :mod:`.inherit`: read a YAML file and its ``_BASE_`` files, merged by PaddleDetection's rule;
- :mod:`.schema`: every key the engine reads, with its rule and default, and the PaddleVideo keys
  this project ignores (constructor keys come from the constructors' signatures);
- :mod:`.rules`: the value rules the schema is written in;
- :mod:`.validate`: check a config against the schema (unknown keys, types, ranges);
- :mod:`.derive`: keys that follow ``MODEL.backbone`` when absent, and the values that must agree.

The entry point is :func:`paddlevideo.utils.get_config` (and ``validate_config`` for configs built in
code); ``python -m paddlevideo.config CONFIG [-o KEY=VALUE ...]`` prints the resolved config.
Importing this package imports nothing heavy; paddle is imported when a config is first checked.
"""
