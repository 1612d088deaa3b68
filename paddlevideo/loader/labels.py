"""Class-name lists (``id name`` per line: the Kinetics-400 label list, UCF-101's ``classInd.txt``)."""

import os

from ..utils.errors import InputError
from ..utils.logger import get_logger

# Config keys that may name the class-name list (``id name`` per line), first found wins.
LABEL_FILE_KEYS = (("INFERENCE", "label_file"), ("label_file",), ("DATASET", "label_file"))


def config_label_file(cfg):
    """The label list the config names (see :data:`LABEL_FILE_KEYS`), or None."""
    for keys in LABEL_FILE_KEYS:
        node = cfg
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            return node
    return None


def read_label_names(cfg, label_file=None, instead="class ids are shown"):
    """``{id: name}`` for output, or None (class ids): from ``label_file`` when the user gave one (unreadable:
    :class:`InputError`), else from the list the config names (unreadable: a warning saying what is done
    ``instead``, and None)."""
    path = label_file or config_label_file(cfg)
    if not path:
        return None
    try:
        return load_label_names(path)
    except InputError as err:
        if label_file:
            raise
        get_logger().warning("%s (named by the config); %s", err, instead)
        return None


def load_label_names(path):
    """``id name`` per line (Kinetics-400 label list, UCF-101 ``classInd.txt``) -> ``{id: name}``.

    A line without a leading number gets its 0-based line index as id.
    """
    if not os.path.isfile(path):
        raise InputError(f"label file '{path}' not found; pass an existing list with --label_file")
    names = {}
    try:
        with open(path, encoding="utf-8") as f:
            for index, line in enumerate(line.strip() for line in f):
                if not line:
                    continue
                head, _, rest = line.partition(" ")
                if head.isdigit() and rest.strip():
                    names[int(head)] = rest.strip()
                else:
                    names[index] = line
    except UnicodeDecodeError as err:  # a label list is text: names are shown, never run
        raise InputError(f"label file '{path}' is not UTF-8 text ({err.reason} at byte {err.start}); save it "
                         "as UTF-8") from None
    if not names:
        raise InputError(f"label file '{path}' is empty")
    return names
