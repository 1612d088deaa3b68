"""Extract one TimeSformer feature per video: the CLS feature [embed_dim] averaged over the test views.

Each video runs through the config's test pipeline (num_clips temporal clips x 3 crops) and the
backbone; the final-LayerNorm CLS features of all views are averaged and written as
OUT_DIR/<video stem>.npy (float32, shape [embed_dim]), each file written atomically. Videos that cannot be
read are reported and skipped; the run then ends with one error line counting them and exit code 1.

Examples:
    python tools/extract_features.py -c configs/recognition/timesformer/timesformer_k400_videos.yaml \\
        -w data/TimeSformer_k400.pdparams --input_file videos/ -o features/
    python tools/extract_features.py -c CONFIG -w WEIGHTS --input_file clip.mp4 -o features/ --num_clips 4
"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("extract_features.py", __name__)
import argparse  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="No ccache found")

from paddlevideo.utils.cli import add_debug_flag, prepare_output_dir, run, write_atomically  # noqa: E402
from paddlevideo.utils.errors import UserError  # noqa: E402
from paddlevideo.utils.overwrite import refuse_overwriting_inputs  # noqa: E402

PROG = "extract_features.py"


class FeatureInputError(UserError, ValueError):
    """--input_file names no video, or two videos would write the same feature file."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", required=True, help="YAML config (its MODEL and PIPELINE.test are used)")
    parser.add_argument("-w", "--weights", required=True, help="model weights (.pdparams)")
    parser.add_argument("--input_file", required=True, help="a video file, or a folder searched recursively for videos")
    parser.add_argument("-o", "--output_dir", required=True, help="folder for the <video stem>.npy files")
    parser.add_argument("--num_clips", type=int, default=None,
                        help="temporal clips per video (PIPELINE.test.decode.num_clips; default: the config's, 1)")
    parser.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config entries, e.g. --override PIPELINE.test.decode.backend=pyav")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.num_clips is not None and args.num_clips < 1:
        parser.error(f"--num_clips must be at least 1, got {args.num_clips}")
    return args


def list_videos(input_path):
    """The videos to process: ``input_path`` itself, or every video file under the folder (sorted; the one list
    of extensions, ``paddlevideo.loader.video_files``; other files are named in one warning line).

    Raises:
        FeatureInputError: the path does not exist, the folder holds no video, or two videos share a stem
            (their features would overwrite each other).
    """
    from paddlevideo.loader import video_files

    if not os.path.isfile(input_path) and not os.path.isdir(input_path):
        raise FeatureInputError(f"--input_file '{input_path}' is neither a video file nor a folder")
    try:
        videos = video_files.list_videos(input_path, recursive=True)
    except UserError as err:
        raise FeatureInputError(str(err)) from None
    seen = {}
    for path in videos:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in seen:
            raise FeatureInputError(f"'{seen[stem]}' and '{path}' share the name '{stem}': features are stored by "
                                    "video stem, so extract these folders separately")
        seen[stem] = path
    return videos


def feature_path(output_dir, video):
    """Where the feature of ``video`` goes: ``<output_dir>/<video stem>.npy``."""
    return os.path.join(output_dir, os.path.splitext(os.path.basename(video))[0] + ".npy")


def extract_features(cfg, weights, videos, output_dir):
    """Write ``<stem>.npy`` for each video; returns ``(written_paths, failed_videos)``."""

    import numpy as np
    import paddle
    from tqdm import tqdm

    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.loader.pipelines.sample import repeated_frames_note
    from paddlevideo.modeling.builder import build_model_with_weights
    from paddlevideo.utils import get_logger

    logger = get_logger()
    model = build_model_with_weights(cfg.MODEL, weights)
    pipeline = build_pipeline(cfg.PIPELINE.test, section="PIPELINE.test")
    prepare_output_dir(output_dir, "-o")

    written, failed = [], []
    for path in tqdm(videos, desc="features", unit="video", dynamic_ncols=True):
        try:
            results = pipeline({"filename": path})
        except Exception as err:  # one unreadable video must not stop the run
            lines = str(err).strip().splitlines()
            logger.error("skipping broken video %s: %s: %s", path, type(err).__name__, lines[0] if lines else "")
            failed.append(path)
            continue
        imgs = results["imgs"]  # [3, views * num_seg, H, W]
        note = repeated_frames_note(results)
        if note:
            logger.warning("%s", note)
        with paddle.no_grad():
            feature = model.extract_feature(paddle.to_tensor(imgs[None]))[0].numpy().astype(np.float32)
        out = feature_path(output_dir, path)

        def write(tmp, feature=feature):
            with open(tmp, "wb") as handle:  # np.save on a name would append ".npy" to the temporary name
                np.save(handle, feature)

        written.append(write_atomically(out, write))
    return written, failed


def main(argv=None):
    args = parse_args(argv)
    from paddlevideo.utils import get_config, setup_logger

    logger = setup_logger()
    overrides = list(args.override)
    if args.num_clips is not None:
        overrides.append(f"PIPELINE.test.decode.num_clips={args.num_clips}")
    cfg = get_config(args.config, overrides, show=False)
    videos = list_videos(args.input_file)
    prepare_output_dir(args.output_dir, "-o")  # before the model loads: a bad folder fails at once
    refuse_overwriting_inputs([("-o", feature_path(args.output_dir, video)) for video in videos],
                              [("--input_file", video) for video in videos] + [("-c", args.config),
                                                                                ("-w", args.weights)])
    written, failed = extract_features(cfg, args.weights, videos, args.output_dir)
    logger.info("wrote %d feature file(s) to %s", len(written), args.output_dir)
    if failed:
        names = ", ".join(failed[:5]) + (f", ... ({len(failed)} in all)" if len(failed) > 5 else "")
        raise FeatureInputError(f"{len(failed)} of {len(videos)} video(s) could not be read and have no features "
                                f"(the others were written): {names}")
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
