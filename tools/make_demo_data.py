"""Generate the demo dataset: clips of a moving shape whose classes differ only in motion direction.

Example:
    python tools/make_demo_data.py --output data/demo --num_train 2000 --num_val 200 --seed 0
"""

import argparse
import os
import sys
import time

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)
from paddlevideo.loader.demo_data import CLASS_NAMES, MANIFEST, make_demo_dataset  # noqa: E402
from paddlevideo.utils.cli import add_debug_flag, prepare_output_dir, run  # noqa: E402
from paddlevideo.utils.errors import UserError  # noqa: E402

PROG = "make_demo_data.py"


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


def main(argv=None):
    args = parse_args(argv)
    for folder in (args.output, os.path.join(args.output, "train"), os.path.join(args.output, "val")):
        prepare_output_dir(folder)  # a file or an unwritable place: one line now, not a failure mid-way
    manifest = os.path.join(args.output, MANIFEST)
    if os.path.isfile(manifest):
        os.remove(manifest)  # clips are about to be rewritten: until the new manifest, the data is not complete
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
