"""Generate the demo dataset: clips of a moving shape whose classes differ only in motion direction.

Example:
    python tools/make_demo_data.py --output data/demo --num_train 2000 --num_val 200 --seed 0
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("make_demo_data.py", __name__)
import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

from paddlevideo.loader.demo_data import CLASS_NAMES, MANIFEST, make_demo_dataset  # noqa: E402
from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.common.files import prepare_output_dir, write_atomically  # noqa: E402
from paddlevideo.common.errors import OutputError, UserError  # noqa: E402

PROG = "make_demo_data.py"
# What make_demo_dataset writes besides its manifest: these lists, and train/ and val/ with clips 000000.avi, ...
LIST_NAMES = ("train.list", "val.list", "label_list.txt")
CLIP_NAME = re.compile(r"^(\d{6}\.avi|\..*\.(tmp|partial\.avi))$")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="data/demo", help="folder to write clips and lists into")
    parser.add_argument("--num_train", type=int, default=2000, help="training clips")
    parser.add_argument("--num_val", type=int, default=200, help="validation clips")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same clips)")
    parser.add_argument("--num_frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--size", type=int, default=32, help="frame height and width in pixels")
    parser.add_argument("--fps", type=int, default=30, help="frame rate stored in the AVI files")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    for key in ("num_train", "num_val", "num_frames", "size", "fps"):
        if getattr(args, key) < (0 if key.startswith("num_") and key != "num_frames" else 1):
            parser.error(f"--{key} must be positive, got {getattr(args, key)}")
    if args.size < 12:
        parser.error(f"--size must be at least 12 pixels to draw a shape, got {args.size}")
    return args


def refuse_foreign_dataset(output):
    """The names this tool writes (``train.list``, ``val.list``, ``label_list.txt``, ``train/``, ``val/``) must not
    belong to a dataset it did not make (one without its ``demo_data.json``): it would overwrite its lists."""
    if not os.path.isdir(output) or os.path.isfile(os.path.join(output, MANIFEST)):
        return
    ours = [name for name in LIST_NAMES if os.path.lexists(os.path.join(output, name))]
    for split in ("train", "val"):  # clip folders: only this tool's clip names (an interrupted run left some)
        folder = os.path.join(output, split)
        if os.path.isdir(folder) and any(not CLIP_NAME.match(name) for name in os.listdir(folder)):
            ours.append(split + "/")
    if ours:
        raise OutputError(f"--output '{output}' holds {', '.join(ours)} without {MANIFEST}: a dataset this tool did "
                          "not make; give an empty folder (or the demo's) so that nothing of it is overwritten")


def _write_incomplete_marker(path):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"complete": False}, handle)


def main(argv=None):
    args = parse_args(argv)
    refuse_foreign_dataset(args.output)
    for folder in (args.output, os.path.join(args.output, "train"), os.path.join(args.output, "val")):
        prepare_output_dir(folder)  # a file or an unwritable place: one line now, not a failure mid-way
    # Clips are about to be rewritten: until the final manifest the data is marked incomplete (and as this
    # tool's, so a rerun after an interruption may write here again).
    write_atomically(os.path.join(args.output, MANIFEST), _write_incomplete_marker)
    began = time.time()
    try:
        paths = make_demo_dataset(args.output, args.num_train, args.num_val, args.seed, args.num_frames,
                                  args.size, args.fps, progress=True)
    except OSError as err:
        if err.errno is not None:
            raise  # the wrapper names the path and the reason
        # OpenCV's writer reports no reason: most often the disk filled up meanwhile
        raise UserError(f"{err}; check that --output '{args.output}' has free space and is writable, "
                        "then run again (the dataset is only marked complete at the end)") from err
    print(f"wrote {args.num_train} train + {args.num_val} val clips ({len(CLASS_NAMES)} classes: "
          f"{', '.join(CLASS_NAMES)}) in {time.time() - began:.1f} s")
    for key, path in paths.items():
        print(f"  {key}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
