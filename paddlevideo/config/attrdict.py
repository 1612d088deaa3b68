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

    __setattr__ = dict.__setitem__

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise MissingKeyError(f"the config has no key '{key}' where it is needed; add it to the config "
                                  "(see configs/recognition/timesformer/ for complete ones)") from None

    def __deepcopy__(self, memo):
        clone = AttrDict({k: copy.deepcopy(v, memo) for k, v in self.items()})
        for record in (DERIVED, DEFAULTS):
            if record in self.__dict__:
                object.__setattr__(clone, record, dict(self.__dict__[record]))
        return clone


def to_attr(obj, mapping=AttrDict):
    """Dicts (and the dicts in lists) as :class:`AttrDict`, or as ``mapping``."""
    if isinstance(obj, dict):
        return mapping({k: to_attr(v, mapping) for k, v in obj.items()})
    if isinstance(obj, list):
        return [to_attr(v, mapping) for v in obj]
    return obj


def to_plain(obj):
    """An :class:`AttrDict` tree as plain dicts and lists (for YAML/JSON dumps)."""
    return to_attr(obj, dict)


def lookup(cfg, path):
    """The value at the dotted ``path`` of ``cfg``, or None where a part of the path is absent."""
    for part in path.split("."):
        cfg = cfg.get(part) if isinstance(cfg, dict) else None
    return cfg
