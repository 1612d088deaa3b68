"""Read YAML that may come from elsewhere: no tag builds a Python object, and no document expands past a bound.

The loader is yaml's SafeLoader, which also reads ``1e-6`` (no dot) as a float, as config authors expect. A
document whose aliases repeat nodes into more values than :data:`MAX_VALUES` is refused, since every step after
loading (merge, check, attribute dicts) copies the expanded tree: ten nested lists of ten aliases are 10**9 values
from a 1 kB file. A full PaddleVideo config has a few hundred.
"""

import re

import yaml

MAX_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-6`` (no dot) as a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class TooLarge(yaml.YAMLError):
    """A YAML document nested too deep, or expanding (through aliases) to more than :data:`MAX_VALUES` values."""


def load_yaml(text_or_stream):
    """Parse YAML (scientific notation without a dot is a float; no Python tags).

    Raises:
        yaml.YAMLError: not YAML, a tag that would build an object, or :class:`TooLarge`.
    """
    try:
        data = yaml.load(text_or_stream, Loader=_Loader)
    except RecursionError:
        raise TooLarge("its nesting is too deep to read") from None
    if _expanded_size(data) > MAX_VALUES:
        raise TooLarge(f"it expands to more than {MAX_VALUES} values (aliases '*name' repeating "
                       "anchored '&name' nodes); a config needs a few hundred")
    return data


def _expanded_size(data):
    """Values in ``data`` counting every alias as the copy later steps make of it; linear in distinct nodes."""
    sizes, stack = {}, [(data, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, (dict, list)) or (id(node) in sizes and not children_done):
            continue
        children = list(node.values()) if isinstance(node, dict) else node
        if children_done:
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
            continue
        sizes[id(node)] = MAX_VALUES + 1  # a node met again while open contains itself: refuse it too
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    return sizes.get(id(data), 1)
