"""A timeline's files: ``<stem>.timeline.csv``, ``<stem>.segments.json`` and ``<stem>.timeline.png``.

The three are written into a hidden staging folder inside the output folder and moved into place only when
all are complete, so a reader never finds a half-written file or a picture of another run's CSV.
"""

import csv
import json
import os
import shutil
import tempfile

from ...common.errors import InputError, OutputError
from .sources import sanitize_stem

CSV_HEADER = ("start_s", "end_s", "class_id", "class_name", "score")
TIME_DECIMALS = 6  # microseconds: exact enough to tell which frames a window holds at any frame rate


def csv_header(top_k, smoothed, cuts=False):
    """The CSV columns: :data:`CSV_HEADER`, then ``topN_class_id, topN_class_name, topN_score`` for ranks
    2..top_k, then ``raw_class_id, raw_score`` (the window's own top-1) when the scores are smoothed, then
    ``crosses_cut`` (1 when the window's frames straddle a detected hard cut, else 0) when cuts are detected."""
    columns = list(CSV_HEADER)
    for rank in range(2, top_k + 1):
        columns += [f"top{rank}_class_id", f"top{rank}_class_name", f"top{rank}_score"]
    if smoothed:
        columns += ["raw_class_id", "raw_score"]
    if cuts:
        columns += ["crosses_cut"]
    return columns


def _layout(timeline):
    """``(top_k, smoothed, cuts)``: the CSV's optional columns for ``timeline`` (see :func:`csv_header`)."""
    settings = timeline.settings
    if settings is None:
        return 1, False, False
    return settings.top_k, settings.smooth > 1, settings.cuts == "auto"


def _name(name):
    return "" if name is None else name


def csv_rows(timeline):
    """One list per window, in :func:`csv_header` order."""
    top_k, smoothed, cuts = _layout(timeline)
    rows = []
    for w in timeline.windows:
        row = [round(w["start_s"], TIME_DECIMALS), round(w["end_s"], TIME_DECIMALS), w["class_id"],
               _name(w["class_name"]), f"{w['score']:.6f}"]
        names = w["class_names"] or [None] * len(w["class_ids"])
        for rank in range(1, top_k):
            if rank < len(w["class_ids"]):
                row += [w["class_ids"][rank], _name(names[rank]), f"{w['scores'][rank]:.6f}"]
            else:  # fewer classes than top_k
                row += ["", "", ""]
        if smoothed:
            row += [w["raw_class_id"], f"{w['raw_score']:.6f}"]
        if cuts:
            row.append(int(bool(w.get("crosses_cut"))))
        rows.append(row)
    return rows


def timeline_paths(out_dir, stem):
    """``{'csv', 'json', 'png'}`` paths for ``stem`` (sanitized: the files stay inside ``out_dir``)."""
    stem = sanitize_stem(stem)
    return {"csv": os.path.join(out_dir, f"{stem}.timeline.csv"),
            "json": os.path.join(out_dir, f"{stem}.segments.json"),
            "png": os.path.join(out_dir, f"{stem}.timeline.png")}


def write_timeline(timeline, out_dir, stem, truth=None):
    """Write the timeline's CSV, segments JSON and PNG into ``out_dir`` (created); returns their paths.

    ``truth``: optional true segments (``start_s``, ``end_s``, ``class_id``, ``class_name``) drawn above the
    predicted ribbon in the PNG.
    """
    from .draw import draw_timeline

    paths = timeline_paths(out_dir, stem)
    try:
        os.makedirs(out_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".timeline-", dir=out_dir)
    except OSError as err:
        raise OutputError(f"cannot write the timeline into '{out_dir}' ({err.strerror or err})") from err
    try:
        staged = {key: os.path.join(staging, os.path.basename(path)) for key, path in paths.items()}
        with open(staged["csv"], "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(csv_header(*_layout(timeline)))
            writer.writerows(csv_rows(timeline))
        with open(staged["json"], "w", encoding="utf-8") as handle:
            json.dump(timeline.summary(), handle, indent=1, ensure_ascii=False)
            handle.write("\n")
        draw_timeline(timeline, staged["png"], truth=truth)
        for key, path in paths.items():
            os.replace(staged[key], path)
    except OSError as err:
        raise OutputError(f"cannot write the timeline files for '{stem}' into '{out_dir}' "
                          f"({err.strerror or err}); earlier files of that name are left as they were") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def read_timeline_csv(path):
    """The rows of a ``.timeline.csv`` as dicts (numbers parsed; empty names as ''), for scripts and tests."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            if key.endswith("_s") or key.endswith("score"):
                row[key] = float(value) if value != "" else None
            elif key.endswith("class_id") or key == "crosses_cut":
                row[key] = int(value) if value != "" else None
    return rows


def read_truth_segments(path):
    """True segments from a CSV with columns ``start_s``, ``end_s``, ``class_id`` (and optionally
    ``class_name``), e.g. ``tools/make_demo_long_video.py``'s ``.truth.csv``; drawn above a timeline.

    Raises:
        InputError: missing file or column, or a value that is not a number (``file:line`` named).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("start_s", "end_s", "class_id") if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: no column {missing[0]!r}; need start_s,end_s,class_id[,class_name]")
            segments = []
            for line, row in enumerate(reader, start=2):
                try:
                    segments.append({"start_s": float(row["start_s"]), "end_s": float(row["end_s"]),
                                     "class_id": int(row["class_id"]), "class_name": row.get("class_name") or None})
                except (TypeError, ValueError):
                    raise InputError(f"{path}:{line}: start_s, end_s must be numbers and class_id a whole "
                                     f"number, got {row}") from None
    except OSError as err:
        raise InputError(f"truth file '{path}' cannot be read ({err.strerror or err})") from err
    return segments
