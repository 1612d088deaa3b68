"""Render the long demo video: segments of the demo classes, of known and varied lengths, one after another.

Inside a segment one shape keeps moving in its class's direction (continuous motion; the frame wraps around
along the motion axis), at a clip's speed, so every window of the demo model's 8 frames looks like a clip of
that class; the class changes at each segment boundary. Writes the video (MJPG AVI) and the ground truth
next to it, ``<name>.truth.csv`` (start_s,end_s,class_id,class_name,start_frame,end_frame).

Example:
    python tools/make_demo_long_video.py --output data/demo_long/demo_long.avi --segments 24 --seed 0
    python tools/predict.py -c configs/recognition/timesformer/timesformer_demo_videos.yaml \\
        --model_file inference/TimeSformer_demo/TimeSformer_demo.pdmodel -i data/demo_long/demo_long.avi \\
        --label_file data/demo/label_list.txt --timeline output/timeline --smooth 5
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("make_demo_long_video.py", __name__)
import argparse  # noqa: E402

from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.common.files import prepare_output_dir, write_atomically  # noqa: E402

PROG = "make_demo_long_video.py"


def truth_path(video):
    """``<video without extension>.truth.csv``."""
    return os.path.splitext(video)[0] + ".truth.csv"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="data/demo_long/demo_long.avi", help="the video to write (.avi)")
    parser.add_argument("--segments", type=int, default=24, help="number of segments")
    parser.add_argument("--min_s", type=float, default=1.0, help="shortest segment in seconds")
    parser.add_argument("--max_s", type=float, default=4.0, help="longest segment in seconds")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same video)")
    parser.add_argument("--fps", type=int, default=30, help="frame rate")
    parser.add_argument("--size", type=int, default=32, help="frame height and width in pixels (the demo model's 32)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.segments < 1:
        parser.error(f"--segments must be >= 1, got {args.segments}")
    if not 0 < args.min_s <= args.max_s:
        parser.error(f"need 0 < --min_s <= --max_s, got {args.min_s} and {args.max_s}")
    if args.fps < 1 or args.size < 12:
        parser.error("--fps must be >= 1 and --size >= 12")
    if not args.output.lower().endswith(".avi"):
        parser.error(f"--output must end in .avi (an MJPG AVI), got '{args.output}'")
    return args


def main(argv=None):
    args = parse_args(argv)
    from paddlevideo.loader.demo_data import make_long_video, write_truth_csv

    folder = os.path.dirname(os.path.abspath(args.output))
    prepare_output_dir(folder, "--output")

    truth = []

    def write(tmp):
        truth.extend(make_long_video(tmp, args.segments, args.seed, args.min_s, args.max_s, args.fps, args.size))

    # the video goes to a temporary .avi (OpenCV picks the container by extension), then is renamed
    write_atomically(args.output, lambda tmp: _with_avi_name(tmp, write))
    csv_path = write_truth_csv(truth_path(args.output), truth)
    lengths = [row["end_s"] - row["start_s"] for row in truth]
    print(f"wrote {args.output}: {len(truth)} segments, {truth[-1]['end_s']:.1f} s "
          f"(segments {min(lengths):.2f}-{max(lengths):.2f} s), truth in {csv_path}")
    return 0


def _with_avi_name(tmp, write):
    avi = tmp + ".avi"
    try:
        write(avi)
        os.replace(avi, tmp)
    finally:
        if os.path.exists(avi):
            os.remove(avi)


if __name__ == "__main__":
    sys.exit(run(PROG, main))
