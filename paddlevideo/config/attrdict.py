"""The config as the engine holds it: nested :class:`AttrDict` (``cfg.MODEL.backbone.name``)."""

import copy

from ..common.errors import ConfigError

# Attributes (not keys) of a resolved config: ``{key path: value}`` of the keys resolution filled in, derived keys
# and engine defaults, so that save_config can leave out the ones that still hold that value (and log_config the
# defaults).
DERIVED, DEFAULTS = "_derived_keys", "_default_keys"


class MissingKeyError(ConfigError, AttributeError):
    """A key the code reads is absent from the config (an AttributeError too, so ``hasattr`` still works)."""


class AttrDict(dict):
    """A dict whose keys are also attributes."""

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
        for record in (DERIVED, DEFAULTS):
            if record in self.__dict__:
                object.__setattr__(clone, record, dict(self.__dict__[record]))
        return clone


def to_attr(obj):
    """Dicts (and the dicts in lists) as :class:`AttrDict`."""
    if isinstance(obj, dict):
        return AttrDict({k: to_attr(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return [to_attr(v) for v in obj]
    return obj


def to_plain(obj):
    """An :class:`AttrDict` tree as plain dicts and lists (for YAML/JSON dumps)."""
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    return obj


def lookup(cfg, path):
    """The value at the dotted ``path`` of ``cfg``, or None where a part of the path is absent."""
    for part in path.split("."):
        cfg = cfg.get(part) if isinstance(cfg, dict) else None
    return cfg
