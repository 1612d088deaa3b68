"""Write Kinetics-400 list files from the official annotation CSVs and a folder of downloaded clips.

Inputs: the CSVs (columns label,youtube_id,time_start,time_end[,split,...]; UTF-8, a BOM and CRLF line ends are
fine, blank rows are skipped) and a folder holding the clips, named <youtube_id>_<start:06d>_<end:06d>.<ext>
either directly or in any sub-folders (e.g. train/<class>/...).
Class ids: the class names of the training CSV, sorted (spaces -> _), or those of --label_list (e.g. the
published Kinetics-400_label_list.txt, so ids match released checkpoints). A validation label that is not
among them is an error: it would add a class and shift every id after it.
Outputs in --output: train.list and val.list ("relative/path label_id", relative to --video_dir, so configs
use data_prefix: <video_dir>), Kinetics-400_label_list.txt ("id name") and problems.txt (clips listed but
missing, and with --check those that fail to decode; both are left out). Every input is checked before
anything is written; a malformed row is one error naming file:line.

Example:
    python tools/data/k400/build_lists.py --train_csv kinetics_400/train.csv \\
        --val_csv kinetics_400/validate.csv --video_dir data/k400/videos --output data/k400 --check
"""

import os
import runpy
import sys

# tools/_bootstrap.py, which tools/*.py import; from this folder it can only be run by its path
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_bootstrap.py"))

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("build_lists.py", __name__)
import argparse  # noqa: E402
import csv  # noqa: E402
import difflib  # noqa: E402
import math  # noqa: E402

from paddlevideo.loader.list_files import write_label_list, write_list_file  # noqa: E402
from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.common.files import prepare_output_dir  # noqa: E402
from paddlevideo.common.overwrite import refuse_overwriting_inputs  # noqa: E402
from paddlevideo.common.staging import staged_files  # noqa: E402
from paddlevideo.common.errors import InputError  # noqa: E402

PROG = "build_lists.py"
OUTPUTS = ("train.list", "val.list", "Kinetics-400_label_list.txt", "problems.txt")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
REQUIRED_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


# An annotation CSV, label list or video folder is missing or malformed; the message names file:line.
AnnotationError = InputError


def label_file_name(name):
    """Class name as written in the label list: spaces become underscores."""
    return name.replace(" ", "_")


def _time(value, column, where):
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise AnnotationError(f"{where}: {column} '{value}' is not a time in seconds (a number >= 0); "
                              "fix or delete the row")
    return seconds


def read_annotations(csv_path):
    """Rows of an annotation CSV as dicts, each with its ``line`` number; blank rows are skipped.

    Raises:
        AnnotationError: a missing or unreadable file, a missing column, or a row with an empty label or
            id or a bad time stamp (``time_start``/``time_end`` numbers >= 0, end after start), by file:line.
    """
    if not os.path.isfile(csv_path):
        raise AnnotationError(f"annotation CSV '{csv_path}' not found; pass the official train.csv / validate.csv")
    rows = []
    where = csv_path
    try:
        # utf-8-sig: a BOM would otherwise be glued to the first column name; newline="": CRLF is fine
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                found = ",".join(header) if header else "nothing (empty file)"
                raise AnnotationError(f"{csv_path}:1: missing column '{missing[0]}': the header must name "
                                      f"{','.join(REQUIRED_COLUMNS)}, found {found}")
            reader.fieldnames = header
            for row in reader:
                where = f"{csv_path}:{reader.line_num}"
                values = {c: (row.get(c) or "").strip() for c in REQUIRED_COLUMNS}
                if not any(values.values()) and not any((v or "").strip() for v in row.values()
                                                       if isinstance(v, str)):
                    continue  # a blank row (e.g. ",,,," or a trailing empty line)
                for column in ("label", "youtube_id"):
                    if not values[column]:
                        raise AnnotationError(f"{where}: empty {column}; every row needs "
                                              f"{','.join(REQUIRED_COLUMNS)}")
                start = _time(values["time_start"], "time_start", where)
                end = _time(values["time_end"], "time_end", where)
                if end <= start:
                    raise AnnotationError(f"{where}: time_end {values['time_end']} is not after time_start "
                                          f"{values['time_start']}; fix or delete the row")
                rows.append({**values, "line": reader.line_num})
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{where}: not UTF-8 text (byte {err.start}); save the CSV as UTF-8") from None
    except csv.Error as err:
        raise AnnotationError(f"{where}: not a valid CSV row ({err})") from None
    if not rows:
        raise AnnotationError(f"{csv_path}: no annotation rows after the header")
    return rows


def clip_stem(row):
    return f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"


def index_clips(video_dir):
    """Map clip stem -> path relative to ``video_dir`` for every video file below it."""
    found = {}
    for folder, _, files in os.walk(video_dir):
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                found.setdefault(stem, os.path.relpath(os.path.join(folder, name), video_dir))
    return found


def build_label_names(rows):
    """Sorted class names (as in the CSV, with spaces) -> their ids."""
    names = sorted({row["label"] for row in rows})
    return {name: index for index, name in enumerate(names)}


def read_label_list(path):
    """An ``id name`` label list (e.g. the published Kinetics-400_label_list.txt) -> {name: id}."""
    if not os.path.isfile(path):
        raise AnnotationError(f"label list '{path}' not found")
    ids = {}
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split(maxsplit=1)
            if not parts:
                continue
            if len(parts) != 2 or not parts[0].isdigit():
                raise AnnotationError(f"{path}:{number}: expected 'id name', got '{line.strip()}'")
            ids[parts[1].strip()] = int(parts[0])
    if not ids or sorted(ids.values()) != list(range(len(ids))):
        raise AnnotationError(f"{path}: ids must run 0..N-1, once each")
    return ids


def check_labels(rows, ids, csv_path, known_from):
    """Every row's label (as written in a label list, spaces -> _) must be a key of ``ids``."""
    for row in rows:
        name = label_file_name(row["label"])
        if name not in ids:
            close = difflib.get_close_matches(name, list(ids), n=1)
            hint = f" (did you mean '{close[0].replace('_', ' ')}'?)" if close else ""
            raise AnnotationError(f"{csv_path}:{row['line']}: label '{row['label']}' is not a class of "
                                  f"{known_from}{hint}; fix the row or use matching files")


def decodes(path, backend):
    """True when the clip opens and its first and last frames decode."""
    from paddlevideo.loader.decoders import open_video

    try:
        with open_video(path, backend) as reader:
            reader.get_frames([0, reader.num_frames - 1])
        return True
    except Exception:
        return False


def build_lists(train_csv, val_csv, video_dir, output, check=False, backend="decord", progress=True,
                label_list=None):
    """Write the lists and return a summary dict (counts, missing and undecodable clips per split).

    Every input is read and checked before the first file is written; the files are written whole, as one
    set (staged and moved in together), and never over an input.
    """
    splits = {"train": read_annotations(train_csv), "val": read_annotations(val_csv)}
    if label_list:
        ids = read_label_list(label_list)
        check_labels(splits["train"], ids, train_csv, f"--label_list '{label_list}'")
    else:
        ids = {label_file_name(name): index for name, index in build_label_names(splits["train"]).items()}
    check_labels(splits["val"], ids, val_csv, f"--label_list '{label_list}'" if label_list
                 else f"the training CSV '{train_csv}'")
    if not os.path.isdir(video_dir):
        raise AnnotationError(f"video folder '{video_dir}' not found; pass the folder of downloaded clips")
    refuse_overwriting_inputs([("--output", os.path.join(output, name)) for name in OUTPUTS],
                              [("--train_csv", train_csv), ("--val_csv", val_csv), ("--label_list", label_list)])
    prepare_output_dir(output)
    clips = index_clips(video_dir)
    summary = {"classes": len(ids), "missing": [], "broken": []}
    # the lists are one output: staged, and moved in together when all are written (common/staging.py)
    with staged_files(output, "k400-lists") as stage:
        for split, rows in splits.items():
            iterator = rows
            if progress:
                from tqdm import tqdm

                iterator = tqdm(rows, desc=f"{split} clips" + (" (decoding)" if check else ""), unit="clip")
            lines = []
            for row in iterator:
                relative = clips.get(clip_stem(row))
                if relative is None:
                    summary["missing"].append(f"{split} {clip_stem(row)} ({row['label']})")
                    continue
                if check and not decodes(os.path.join(video_dir, relative), backend):
                    summary["broken"].append(f"{split} {relative}")
                    continue
                lines.append((relative, ids[label_file_name(row["label"])]))
            stage.write(f"{split}.list", lambda tmp, lines=lines: write_list_file(tmp, lines))
            summary[split] = len(lines)
        names = {index: name for name, index in ids.items()}
        stage.write("Kinetics-400_label_list.txt", lambda tmp: write_label_list(tmp, names))

        def write_problems(tmp):
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.writelines(f"missing {item}\n" for item in summary["missing"])
                handle.writelines(f"broken {item}\n" for item in summary["broken"])

        stage.write("problems.txt", write_problems)
        stage.commit()
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_csv", required=True, help="official train annotations (train.csv)")
    parser.add_argument("--val_csv", required=True, help="official validation annotations (validate.csv)")
    parser.add_argument("--video_dir", required=True, help="folder with the downloaded clips (searched recursively)")
    parser.add_argument("--output", default="data/k400", help="folder for the lists (default data/k400)")
    parser.add_argument("--label_list", default=None,
                        help="'id name' class list fixing the ids (default: the training CSV's names, sorted)")
    parser.add_argument("--check", action="store_true", help="decode the first and last frame of every clip")
    parser.add_argument("--backend", default="decord", choices=("decord", "pyav", "cv2"), help="decoder for --check")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    summary = build_lists(args.train_csv, args.val_csv, args.video_dir, args.output, args.check, args.backend,
                          label_list=args.label_list)
    print(f"{summary['classes']} classes; train.list {summary['train']} clips, val.list {summary['val']} clips "
          f"written to {args.output}")
    print(f"missing clips: {len(summary['missing'])}" + (f", failing to decode: {len(summary['broken'])}"
                                                          if args.check else " (use --check to decode them)"))
    for item in (summary["missing"] + summary["broken"])[:10]:
        print(f"  {item}")
    if summary["missing"] or summary["broken"]:
        print(f"full list: {os.path.join(args.output, 'problems.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
