"""Write UCF-101 list files for one official split.

Inputs (the ucfTrainTestlist folder): classInd.txt ("1 ApplyEyeMakeup", 1-based), trainlist0N.txt
("Class/v_x.avi 1") and testlist0N.txt ("Class/v_x.avi", no label: taken from the class folder).
Outputs in --output: train_split<N>.list and val_split<N>.list ("Class/v_x.avi label_id", 0-based, relative to
the UCF-101 video folder, so configs use data_prefix: <video_dir>) and ucf101_label_list.txt ("id name").
With --video_dir, clips missing from it are reported and left out.

Example:
    python tools/data/ucf101/build_lists.py --annotations data/ucf101/ucfTrainTestlist --split 1 \\
        --video_dir data/ucf101/videos --output data/ucf101
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
from paddlevideo.loader.list_files import write_label_list, write_list_file  # noqa: E402


def read_class_index(path):
    """classInd.txt -> {class name: 0-based id}."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"class index '{path}' not found")
    classes = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(f"{path}:{number}: expected '<1-based id> <ClassName>', got '{line.strip()}'")
            classes[parts[1]] = int(parts[0]) - 1
    if sorted(classes.values()) != list(range(len(classes))):
        raise ValueError(f"{path}: class ids must run 1..{len(classes)} without gaps")
    return classes


def read_split(path, classes):
    """trainlist / testlist -> [(relative path, 0-based label)]; the label comes from the class folder."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"split file '{path}' not found")
    items = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            relative = parts[0]
            folder = relative.replace("\\", "/").split("/")[0]
            if folder not in classes:
                raise ValueError(f"{path}:{number}: class folder '{folder}' is not in classInd.txt")
            label = classes[folder]
            if len(parts) > 1 and int(parts[1]) - 1 != label:
                raise ValueError(f"{path}:{number}: label {parts[1]} disagrees with classInd for '{folder}'")
            items.append((relative, label))
    return items


def build_lists(annotations, split, output, video_dir=None, progress=True):
    """Write the lists of ``split`` (1, 2 or 3); returns a summary dict (counts and missing clips)."""
    classes = read_class_index(os.path.join(annotations, "classInd.txt"))
    os.makedirs(output, exist_ok=True)
    summary = {"classes": len(classes), "missing": []}
    for source, target in (("trainlist", "train"), ("testlist", "val")):
        items = read_split(os.path.join(annotations, f"{source}0{split}.txt"), classes)
        if progress:
            from tqdm import tqdm

            items = tqdm(items, desc=f"{target} split {split}", unit="clip")
        lines = []
        for relative, label in items:
            if video_dir and not os.path.isfile(os.path.join(video_dir, relative)):
                summary["missing"].append(f"{target} {relative}")
                continue
            lines.append((relative, label))
        write_list_file(os.path.join(output, f"{target}_split{split}.list"), lines)
        summary[target] = len(lines)
    write_label_list(os.path.join(output, "ucf101_label_list.txt"), {index: name for name, index in classes.items()})
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", required=True, help="folder with classInd.txt, trainlist0N.txt, testlist0N.txt")
    parser.add_argument("--split", type=int, default=1, choices=(1, 2, 3), help="official split (default 1)")
    parser.add_argument("--output", default="data/ucf101", help="folder for the lists (default data/ucf101)")
    parser.add_argument("--video_dir", default=None, help="UCF-101 video folder; report clips missing from it")
    args = parser.parse_args(argv)
    try:
        summary = build_lists(args.annotations, args.split, args.output, args.video_dir)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{summary['classes']} classes; split {args.split}: train {summary['train']} clips, "
          f"val {summary['val']} clips written to {args.output}")
    if args.video_dir:
        print(f"missing clips: {len(summary['missing'])}")
        for item in summary["missing"][:10]:
            print(f"  {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
