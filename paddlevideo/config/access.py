"""Read engine keys from a config, taking absent ones from the schema (the one place defaults are written).

The engine never writes ``cfg.get("epochs", 1)``: a default stated beside the read drifts from the
schema's (it did once: ``test_batch_size``). :func:`setting` reads a key or its schema default;
:func:`component_setting` does the same for a component's constructor key (``MODEL.backbone.depth``),
whose default is the constructor's; :func:`require` names the sections a task needs before it starts.
"""

from ..utils.config import ConfigError
from . import schema

# Keys whose default is another key's value (the schema documents them as such).
DEFAULT_FROM = {"DATASET.test_batch_size": "DATASET.batch_size", "DATASET.valid_batch_size": "DATASET.batch_size"}


def _lookup(cfg, path):
    node = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return schema.MISSING
        node = node[part]
    return node


def setting(cfg, path):
    """The value of engine key ``path`` (``"epochs"``, ``"DATASET.num_workers"``) in ``cfg``, else its default.

    Raises:
        ConfigError: the config lacks a key that has no default (e.g. ``DATASET.batch_size``).
    """
    value = _lookup(cfg, path)
    if value is schema.MISSING and path in DEFAULT_FROM:
        return setting(cfg, DEFAULT_FROM[path])
    if value is schema.MISSING:
        value = schema.default(path)
    if value is schema.MISSING:
        raise ConfigError(f"the config has no {path} and it has no default; add it to the config or pass -o {path}=VALUE")
    return value


def component_setting(cfg, path):
    """A component's constructor key (``"MODEL.backbone.num_seg"``): the config's value, else the default of
    the constructor the component's ``name`` selects.

    Raises:
        ConfigError: the component or its ``name`` is missing, or the key has no default.
    """
    section, key = path.rsplit(".", 1)
    node = _lookup(cfg, section)
    if not isinstance(node, dict) or "name" not in node:
        raise ConfigError(f"the config has no {section}.name; add the {section} section")
    if key in node:
        return node[key]
    kind = section.rsplit(".", 1)[-1]
    param = schema.component_keys(kind, node["name"]).get(key)
    if param is None or param.default is schema.MISSING:
        raise ConfigError(f"the config has no {path} and {node['name']} has no default for it; add it to the config")
    return param.default


def require(cfg, paths, purpose):
    """Raise a :class:`ConfigError` naming the first of ``paths`` (dotted) that ``cfg`` lacks.

    ``purpose`` says what needs it (``"training"``, ``"--test"``) for the message.
    """
    for path in paths:
        if _lookup(cfg, path) in (schema.MISSING, None):
            raise ConfigError(f"the config has no {path}, which {purpose} needs; add it to the config "
                              "(see configs/recognition/timesformer/ for complete ones)")
