"""The list-file formats, read, checked and written in one place.

A video list has one ``relative/path label_id`` line per video (joined to ``data_prefix`` when read);
a label list has one ``id name`` line per class. The dataset reads them; the data preparation tools
and the demo generator write them.

Reading is strict where a mistake would otherwise surface later as a wrong number or a crash deep in the
model: every line is parsed before any work starts, a UTF-8 byte-order mark and Windows line ends are
accepted, blank lines are skipped, and every error names ``file:line``.
"""

import os
import re

from ..common.errors import InputError

_LABEL = re.compile(r"^[+-]?[0-9]+$")


class ListFileError(InputError):
    """A list file is empty, not UTF-8, has a malformed line or a label outside the model's classes."""


class ListFileNotFoundError(InputError, FileNotFoundError):
    """A list file does not exist."""


def read_list_file(file_path, data_prefix="", suffix=""):
    """Parse a list file into ``[{'filename': data_prefix/path + suffix, 'labels': int, 'line': int}]``.

    A line is ``relative/path label``; paths may contain spaces (the label is the last field). ``suffix`` is
    appended to every listed path as written (PaddleVideo's ``suffix: '.avi'`` for lists without extensions).
    ``line`` is the 1-based line number, for error messages.

    Raises:
        ListFileNotFoundError: no such file.
        ListFileError: the file is empty, not UTF-8 text, or a line has no integer label (``file:line``).
    """
    if not file_path or not os.path.isfile(file_path):
        raise ListFileNotFoundError(f"list file '{file_path}' not found: set DATASET.<mode>.file_path to a list "
                                    f"of 'relative/path label' lines (see docs/data.md)")
    with open(file_path, "rb") as handle:
        raw = handle.read()
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (Windows editors write one)
        raw = raw[3:]
    items = []
    for number, line in enumerate(raw.splitlines(), 1):
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise ListFileError(f"{file_path}:{number}: not UTF-8 text (byte {err.start} of the line); save the "
                                "list as UTF-8") from None
        if not text:
            continue
        parts = text.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise ListFileError(f"{file_path}:{number}: no label: expected 'relative/path label_id', got '{text}'")
        if not _LABEL.match(parts[1]):
            raise ListFileError(f"{file_path}:{number}: the label '{parts[1]}' is not an integer: expected "
                                f"'relative/path label_id', got '{text}'")
        path = parts[0] + (suffix or "")
        items.append({"filename": os.path.join(data_prefix, path) if data_prefix else path,
                      "labels": int(parts[1]), "line": number})
    if not items:
        raise ListFileError(f"list file '{file_path}' is empty: it needs one 'relative/path label_id' line per video")
    return items


def check_labels(items, num_classes, file_path, key="MODEL.head.num_classes"):
    """Raise :class:`ListFileError` at the first label outside ``[0, num_classes)``, naming ``file:line``."""
    for item in items:
        if not 0 <= item["labels"] < num_classes:
            raise ListFileError(f"{file_path}:{item.get('line', '?')}: label {item['labels']} is outside "
                                f"[0, {num_classes}) ({key} = {num_classes}); fix the list or {key}")


def missing_files(items):
    """The items whose ``filename`` is not an existing file."""
    return [item for item in items if not os.path.isfile(item["filename"])]


def write_list_file(path, items):
    """Write ``[(relative_path, label_id), ...]`` as a video list; returns ``path``."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(f"{relative} {label}\n" for relative, label in items)
    return path


def write_label_list(path, names):
    """Write ``{label_id: name}`` as ``id name`` lines in id order; returns ``path``."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(f"{index} {names[index]}\n" for index in sorted(names))
    return path
