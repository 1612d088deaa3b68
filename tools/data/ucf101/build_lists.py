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

import os
import runpy
import sys

# tools/_bootstrap.py, which tools/*.py import; from this folder it can only be run by its path
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_bootstrap.py"))

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("build_lists.py", __name__)
import argparse  # noqa: E402

from paddlevideo.loader.list_files import write_label_list, write_list_file  # noqa: E402
from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.common.files import prepare_output_dir  # noqa: E402
from paddlevideo.common.overwrite import refuse_overwriting_inputs  # noqa: E402
from paddlevideo.common.staging import staged_files  # noqa: E402
from paddlevideo.common.errors import InputError  # noqa: E402

PROG = "build_lists.py"


# A UCF-101 annotation file is missing or malformed; the message names file:line.
AnnotationError = InputError


def _lines(path, what):
    """``(number, stripped line)`` of a text file (a BOM and CRLF line ends are fine); blank lines skipped."""
    if not os.path.isfile(path):
        raise AnnotationError(f"{what} '{path}' not found; --annotations must be the ucfTrainTestlist folder "
                              "(classInd.txt, trainlist0N.txt, testlist0N.txt)")
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = [(number, line.strip()) for number, line in enumerate(handle, 1)]
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not UTF-8 text (byte {err.start})") from None
    return [(number, line) for number, line in lines if line]


def read_class_index(path):
    """classInd.txt -> {class name: 0-based id}."""
    classes = {}
    for number, line in _lines(path, "class index"):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1:
            raise AnnotationError(f"{path}:{number}: expected '<1-based id> <ClassName>', got '{line}'")
        if parts[1] in classes:
            raise AnnotationError(f"{path}:{number}: class '{parts[1]}' is listed twice")
        classes[parts[1]] = int(parts[0]) - 1
    if not classes:
        raise AnnotationError(f"{path}: no classes; it needs one '<1-based id> <ClassName>' line per class")
    if sorted(classes.values()) != list(range(len(classes))):
        raise AnnotationError(f"{path}: class ids must run 1..{len(classes)} once each, without gaps")
    return classes


def read_split(path, classes):
    """trainlist / testlist -> [(relative path, 0-based label)]; the label comes from the class folder."""
    items = []
    for number, line in _lines(path, "split file"):
        parts = line.split()
        relative = parts[0]
        folder = relative.replace("\\", "/").split("/")[0]
        if len(parts) > 2 or "/" not in relative.replace("\\", "/"):
            raise AnnotationError(f"{path}:{number}: expected 'ClassName/v_name.avi [1-based label]', got '{line}'")
        if folder not in classes:
            raise AnnotationError(f"{path}:{number}: class folder '{folder}' is not in classInd.txt")
        label = classes[folder]
        if len(parts) == 2:
            if not parts[1].isdigit():
                raise AnnotationError(f"{path}:{number}: label '{parts[1]}' is not a 1-based class id")
            if int(parts[1]) - 1 != label:
                raise AnnotationError(f"{path}:{number}: label {parts[1]} disagrees with classInd for '{folder}' "
                                      f"({label + 1})")
        items.append((relative, label))
    if not items:
        raise AnnotationError(f"{path}: no videos listed")
    return items


def build_lists(annotations, split, output, video_dir=None, progress=True):
    """Write the lists of ``split`` (1, 2 or 3); returns a summary dict (counts and missing clips).

    Every input is read and checked before the first file is written; the files are written whole, as one
    set (staged and moved in together), and never over an input.
    """
    classes = read_class_index(os.path.join(annotations, "classInd.txt"))
    splits = {target: read_split(os.path.join(annotations, f"{source}0{split}.txt"), classes)
              for source, target in (("trainlist", "train"), ("testlist", "val"))}
    if video_dir and not os.path.isdir(video_dir):
        raise AnnotationError(f"--video_dir '{video_dir}' is not a folder; pass the UCF-101 video folder")
    outputs = [f"train_split{split}.list", f"val_split{split}.list", "ucf101_label_list.txt"]
    read = [os.path.join(annotations, name) for name in ("classInd.txt", f"trainlist0{split}.txt",
                                                        f"testlist0{split}.txt")]
    refuse_overwriting_inputs([("--output", os.path.join(output, name)) for name in outputs],
                              [("--annotations", path) for path in read])
    prepare_output_dir(output)
    summary = {"classes": len(classes), "missing": []}
    # the lists are one output: staged, and moved in together when all are written (common/staging.py)
    with staged_files(output, f"ucf101-split{split}-lists") as stage:
        for target, items in splits.items():
            if progress:
                from tqdm import tqdm

                items = tqdm(items, desc=f"{target} split {split}", unit="clip")
            lines = []
            for relative, label in items:
                if video_dir and not os.path.isfile(os.path.join(video_dir, relative)):
                    summary["missing"].append(f"{target} {relative}")
                    continue
                lines.append((relative, label))
            stage.write(f"{target}_split{split}.list", lambda tmp, lines=lines: write_list_file(tmp, lines))
            summary[target] = len(lines)
        names = {index: name for name, index in classes.items()}
        stage.write("ucf101_label_list.txt", lambda tmp: write_label_list(tmp, names))
        stage.commit()
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", required=True, help="folder with classInd.txt, trainlist0N.txt, testlist0N.txt")
    parser.add_argument("--split", type=int, default=1, choices=(1, 2, 3), help="official split (default 1)")
    parser.add_argument("--output", default="data/ucf101", help="folder for the lists (default data/ucf101)")
    parser.add_argument("--video_dir", default=None, help="UCF-101 video folder; report clips missing from it")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    summary = build_lists(args.annotations, args.split, args.output, args.video_dir)
    print(f"{summary['classes']} classes; split {args.split}: train {summary['train']} clips, "
          f"val {summary['val']} clips written to {args.output}")
    if args.video_dir:
        print(f"missing clips: {len(summary['missing'])}")
        for item in summary["missing"][:10]:
            print(f"  {item}")
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
