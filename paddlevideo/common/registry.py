"""Name -> class registries, used where configs name classes (``name: VisionTransformer``)."""

import copy

from .errors import ConfigError


class ConfigKeyError(ConfigError, TypeError):
    """A config entry the named class does not accept (a ``TypeError`` too, as Python raises it)."""


class RegistryNameError(ConfigError, KeyError):
    """A config names a class no registry holds, or lacks the ``name`` entry (a ``KeyError`` too, as
    before); the message lists the known names."""

    def __str__(self):  # KeyError would print the message in quotes
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class Registry:
    """A mapping from a config ``name`` to a class or function.

    Example::

        BACKBONES = Registry("backbone")

        @BACKBONES.register()
        class VisionTransformer(nn.Layer): ...

        BACKBONES.get("VisionTransformer")
    """

    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def register(self, obj=None, name=None):
        """Register ``obj`` under ``name`` (default: its ``__name__``); usable as a decorator."""

        def _add(item):
            key = name or item.__name__
            if key in self._items and self._items[key] is not item:
                raise KeyError(f"{self.kind} '{key}' is registered twice")
            self._items[key] = item
            return item

        return _add if obj is None else _add(obj)

    def get(self, name):
        """Return the item called ``name``; an unknown name raises RegistryNameError naming the known ones."""
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise RegistryNameError(f"unknown {self.kind} name '{name}'; known {self.kind}s: {known}; check the "
                                   "config's 'name' entry")
        return self._items[name]

    def __contains__(self, name):
        return name in self._items

    def names(self):
        return sorted(self._items)


def build_from_config(cfg, registry, key="name", **extra):
    """Instantiate ``registry.get(cfg[key])`` with the other entries of ``cfg`` as keyword arguments.

    ``cfg`` is not modified. A config entry the class does not accept is reported by key.
    """
    if cfg is None or key not in cfg:
        raise RegistryNameError(f"{registry.kind} config needs a '{key}' entry, got {dict(cfg or {})}")
    kwargs = copy.deepcopy(dict(cfg))
    name = kwargs.pop(key)
    obj = registry.get(name)
    kwargs.update(extra)
    try:
        return obj(**kwargs)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise ConfigKeyError(f"{registry.kind} '{name}': {err}; check the config keys") from err
        raise
    except ValueError as err:
        # A bad value in the config (an unknown choice, a shape that does not divide): name the class.
        # Subclasses (checkpoint and config errors) already say what to do and keep their type.
        if type(err) is ValueError:
            raise ConfigError(f"{registry.kind} '{name}': {err}") from err
        raise
