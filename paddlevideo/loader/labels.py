"""Class-name lists (``id name`` per line: the Kinetics-400 label list, UCF-101's ``classInd.txt``; or one name per
line), read by one reader and checked against the model.

Every tool that names classes (``tools/predict.py``, ``tools/visualize_attention.py``, the test report of
``main.py --test``) reads its list with :func:`read_label_names`, which checks it against the model's
``MODEL.head.num_classes`` before any video is read. A list that would put wrong names on classes is refused
with one line naming the file and the flag (or config key) that gave it:

- not a text list: NUL bytes (a binary file) or not UTF-8;
- an id that is not a non-negative integer, a line without an id among lines with ids, an id without a name;
- the same id twice;
- ids other than ``0 .. num_classes - 1``: too few or too many names for the model, or a gap.

A list numbered ``1 .. num_classes`` (UCF-101's ``classInd.txt``; ``tools/data/ucf101/build_lists.py`` writes
label ``id - 1`` for it) is read as ids ``0 .. num_classes - 1`` (``id - 1``), with one warning line saying so.
A list without ids (one name per line) numbers its names from 0 in order.

A list the user names (``--label_file``) must pass; one the config names (``INFERENCE.label_file``,
``label_file``, ``DATASET.label_file``) that fails gives one warning and the tool shows class ids instead:
ids never lie, a wrong name would.
"""

import os
import re

from ..common.errors import InputError
from ..common.logger import get_logger

# Config keys that may name the class-name list (``id name`` per line), first found wins.
LABEL_FILE_KEYS = (("INFERENCE", "label_file"), ("label_file",), ("DATASET", "label_file"))
_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def config_label_file(cfg):
    """``(path, config key)`` of the label list the config names (see :data:`LABEL_FILE_KEYS`), or None."""
    for keys in LABEL_FILE_KEYS:
        node = cfg
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            return node, ".".join(keys)
    return None


def model_num_classes(cfg):
    """``MODEL.head.num_classes`` of ``cfg``, or None when the config does not state it (nothing to check the
    list against; every PaddleVideo and project config states it)."""
    head = ((cfg.get("MODEL") or {}).get("head") or {}) if isinstance(cfg, dict) else {}
    value = head.get("num_classes") if isinstance(head, dict) else None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def read_label_names(cfg, label_file=None, instead="class ids are shown", flag="--label_file"):
    """``{id: name}`` for output, checked against the model's ``MODEL.head.num_classes``, or None (class ids).

    From ``label_file`` when the user gave one (named ``flag`` in messages; any problem: :class:`InputError`),
    else from the list the config names (any problem: one warning saying what is done ``instead``, and None).
    """
    num_classes = model_num_classes(cfg)
    if label_file:
        return load_label_names(label_file, num_classes, flag)
    named = config_label_file(cfg)
    if named is None:
        return None
    path, key = named
    try:
        return load_label_names(path, num_classes, key)
    except InputError as err:
        get_logger().warning("%s; %s", err, instead)
        return None


def load_label_names(path, num_classes=None, flag="--label_file"):
    """Read the class-name list ``path`` (see the module docstring) -> ``{id: name}`` with ids ``0 .. C - 1``.

    Args:
        path: the list file.
        num_classes: the model's class count ``C`` the list must name exactly (None: not checked).
        flag: the flag or config key that named the file, for messages.
    Raises:
        InputError: one line naming the file, the flag and what is wrong (see the module docstring).
    """
    where = f"label file '{path}' ({flag})"
    if not os.path.isfile(path):
        raise InputError(f"{where} not found; pass an existing 'id name' list")
    with open(path, "rb") as handle:
        data = handle.read()
    if b"\x00" in data:
        raise InputError(f"{where} is a binary file (NUL bytes), not a text list of 'id name' lines")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{where} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise InputError(f"{where} is empty; it needs one 'id name' line per class")
    names = _parse(lines, where)
    return _check_ids(names, num_classes, where)


def _parse(lines, where):
    """``[(line number, text)]`` -> ``{id: (name, line number)}``."""
    with_id = [_INTEGER.match(line.split(None, 1)[0]) is not None for _, line in lines]
    if not any(with_id):  # one name per line, numbered in order
        for number, line in lines:
            head = line.split(None, 1)[0]
            if _NUMBER.match(head):
                raise InputError(f"{where} line {number}: '{head}' is not an integer class id")
        return {index: (line, number) for index, (number, line) in enumerate(lines)}
    names = {}
    for (number, line), has_id in zip(lines, with_id):
        parts = line.split(None, 1)
        if not has_id:
            raise InputError(f"{where} line {number}: '{parts[0]}' is not an integer class id (other lines start "
                             "with one); write 'id name' on every line")
        class_id = int(parts[0])
        if class_id < 0:
            raise InputError(f"{where} line {number}: class id {class_id} is negative")
        if len(parts) < 2:
            raise InputError(f"{where} line {number}: class id {class_id} has no name")
        if class_id in names:
            raise InputError(f"{where} line {number}: class id {class_id} appears again (first on line "
                             f"{names[class_id][1]})")
        names[class_id] = (parts[1].strip(), number)
    return names


def _check_ids(names, num_classes, where):
    ids = sorted(names)
    count = len(ids)
    if ids == list(range(1, count + 1)) and (num_classes is None or count == num_classes):
        get_logger().warning("%s numbers its %d classes 1..%d (as UCF-101's classInd.txt): read as class ids 0..%d "
                             "(id - 1), as tools/data/ucf101/build_lists.py labels them", where, count, count,
                             count - 1)
        return {class_id - 1: names[class_id][0] for class_id in ids}
    if num_classes is not None and count != num_classes:
        raise InputError(f"{where} has {count} class names but the model has {num_classes} classes "
                         "(MODEL.head.num_classes); pass the list the model was trained with")
    expected = range(num_classes if num_classes is not None else count)
    missing = [class_id for class_id in expected if class_id not in names]
    if missing or (ids and ids[-1] >= len(expected)):
        detail = f"id {missing[0]} is missing" if missing else f"id {ids[-1]} is out of range"
        raise InputError(f"{where} must number its classes 0..{len(expected) - 1} once each: {detail}")
    return {class_id: names[class_id][0] for class_id in ids}
