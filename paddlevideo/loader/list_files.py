"""The list-file formats, read and written in one place.

A video list has one ``relative/path label_id`` line per video (joined to ``data_prefix`` when read);
a label list has one ``id name`` line per class. The dataset reads them; the data preparation tools
and the demo generator write them.
"""

import os


def read_list_file(file_path, data_prefix=""):
    """Parse a list file into ``[{'filename': data_prefix/path, 'labels': int}]``.

    A line is ``relative/path label``; paths may contain spaces (the label is the last field). A missing file,
    an empty list or a malformed line raises with the file (and line) named.
    """
    if not file_path or not os.path.isfile(file_path):
        raise FileNotFoundError(f"list file '{file_path}' not found: set DATASET.<mode>.file_path to a list "
                                f"of 'relative/path label' lines (see docs/data.md)")
    items = []
    with open(file_path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{file_path}:{number}: expected 'relative/path label_id', got '{line}'")
            items.append({"filename": os.path.join(data_prefix, parts[0]) if data_prefix else parts[0],
                          "labels": int(parts[1])})
    if not items:
        raise ValueError(f"list file '{file_path}' is empty: it needs one 'relative/path label_id' line per video")
    return items


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
