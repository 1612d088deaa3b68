"""Write Kinetics-400 list files from the official annotation CSVs and a folder of downloaded clips.

Inputs: the CSVs (columns label,youtube_id,time_start,time_end,split) and a folder holding the clips, named
<youtube_id>_<start:06d>_<end:06d>.<ext> either directly or in any sub-folders (e.g. train/<class>/...).
Outputs in --output: train.list and val.list ("relative/path label_id", relative to --video_dir, so configs
use data_prefix: <video_dir>), Kinetics-400_label_list.txt ("id name", names sorted, spaces -> _) and
problems.txt (clips listed but missing, and with --check those that fail to decode; both are left out).

Example:
    python tools/data/k400/build_lists.py --train_csv kinetics_400/train.csv \\
        --val_csv kinetics_400/validate.csv --video_dir data/k400/videos --output data/k400 --check
"""

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
from paddlevideo.loader.list_files import write_label_list, write_list_file  # noqa: E402

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
REQUIRED_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def label_file_name(name):
    """Class name as written in the label list: spaces become underscores."""
    return name.replace(" ", "_")


def read_annotations(csv_path):
    """Rows of an annotation CSV as dicts; a missing file or column raises naming it."""
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"annotation CSV '{csv_path}' not found")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path}: missing column '{missing[0]}' (need {','.join(REQUIRED_COLUMNS)})")
        return list(reader)


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


def decodes(path, backend):
    """True when the clip opens and its first and last frames decode."""
    from paddlevideo.loader.decoders import open_video

    try:
        with open_video(path, backend) as reader:
            reader.get_frames([0, reader.num_frames - 1])
        return True
    except Exception:
        return False


def build_lists(train_csv, val_csv, video_dir, output, check=False, backend="decord", progress=True):
    """Write the lists and return a summary dict (counts, missing and undecodable clips per split)."""
    splits = {"train": read_annotations(train_csv), "val": read_annotations(val_csv)}
    if not os.path.isdir(video_dir):
        raise FileNotFoundError(f"video folder '{video_dir}' not found")
    labels = build_label_names(splits["train"] + splits["val"])
    clips = index_clips(video_dir)
    os.makedirs(output, exist_ok=True)
    summary = {"classes": len(labels), "missing": [], "broken": []}
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
            lines.append((relative, labels[row["label"]]))
        write_list_file(os.path.join(output, f"{split}.list"), lines)
        summary[split] = len(lines)
    write_label_list(os.path.join(output, "Kinetics-400_label_list.txt"),
                     {index: label_file_name(name) for name, index in labels.items()})
    with open(os.path.join(output, "problems.txt"), "w", encoding="utf-8") as handle:
        handle.writelines(f"missing {item}\n" for item in summary["missing"])
        handle.writelines(f"broken {item}\n" for item in summary["broken"])
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_csv", required=True, help="official train annotations (train.csv)")
    parser.add_argument("--val_csv", required=True, help="official validation annotations (validate.csv)")
    parser.add_argument("--video_dir", required=True, help="folder with the downloaded clips (searched recursively)")
    parser.add_argument("--output", default="data/k400", help="folder for the lists (default data/k400)")
    parser.add_argument("--check", action="store_true", help="decode the first and last frame of every clip")
    parser.add_argument("--backend", default="decord", choices=("decord", "pyav", "cv2"), help="decoder for --check")
    args = parser.parse_args(argv)
    try:
        summary = build_lists(args.train_csv, args.val_csv, args.video_dir, args.output, args.check, args.backend)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
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
    sys.exit(main())
