"""Extract one TimeSformer feature per video: the CLS feature [embed_dim] averaged over the test views.

Each video runs through the config's test pipeline (num_clips temporal clips x 3 crops) and the
backbone; the final-LayerNorm CLS features of all views are averaged and written as
OUT_DIR/<video stem>.npy (float32, shape [embed_dim]), each file written atomically. Videos that cannot be
read are reported and skipped; the run then ends with one error line counting them and exit code 1.

Dense features (``--window_s S --stride_s S``): one feature per window of a timeline (docs/timeline.md;
each window sampled and transformed as the test pipeline makes a clip of that span), written as
OUT_DIR/<video stem>.windows.npz with ``features`` float32 ``[num_windows, embed_dim]``, ``start_s`` and
``end_s`` float64 ``[num_windows]`` (seconds) and ``settings`` (the window settings used, JSON). A video that
breaks off keeps the windows before the break (the run then ends with exit 1).

Examples:
    python tools/extract_features.py -c configs/recognition/timesformer/timesformer_k400_videos.yaml \\
        -w data/TimeSformer_k400.pdparams --input_file videos/ -o features/
    python tools/extract_features.py -c CONFIG -w WEIGHTS --input_file clip.mp4 -o features/ --num_clips 4
    python tools/extract_features.py -c CONFIG -w WEIGHTS --input_file match.mp4 -o features/ --window_s 8.53 --stride_s 2
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("extract_features.py", __name__)
import argparse  # noqa: E402

from paddlevideo.cli import add_debug_flag, add_trust_pickle_flag, run  # noqa: E402
from paddlevideo.common.files import output_name, prepare_output_dir, write_atomically  # noqa: E402
from paddlevideo.common.errors import InputError, UserError  # noqa: E402
from paddlevideo.common.overwrite import refuse_overwriting_inputs  # noqa: E402

PROG = "extract_features.py"


# --input_file names no video, or two videos would write the same feature file
FeatureInputError = InputError


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
    windows = parser.add_argument_group("dense features: one per window (docs/timeline.md)")
    windows.add_argument("--window_s", type=float, default=None,
                         help="window length in seconds (default with --stride_s: the config's clip span)")
    windows.add_argument("--stride_s", type=float, default=None,
                         help="seconds between window starts (default with --window_s: half a window)")
    windows.add_argument("--batch_size", type=int, default=4, help="windows per model call (dense features)")
    add_trust_pickle_flag(parser, "the -w weights")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.num_clips is not None and args.num_clips < 1:
        parser.error(f"--num_clips must be at least 1, got {args.num_clips}")
    args.windowed = args.window_s is not None or args.stride_s is not None
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
        stem = os.path.basename(feature_path("", path, ""))
        if stem in seen:
            raise FeatureInputError(f"'{seen[stem]}' and '{path}' share the name '{stem}': features are stored by "
                                    "video stem, so extract these folders separately")
        seen[stem] = path
    return videos


def feature_path(output_dir, video, suffix=".npy"):
    """Where the feature of ``video`` goes: ``<output_dir>/<video stem><suffix>``, the stem made safe so the file
    stays inside the output folder (``utils.files.output_name``)."""
    return os.path.join(output_dir, output_name(os.path.splitext(os.path.basename(video))[0]) + suffix)


def extract_features(cfg, weights, videos, output_dir, trust_pickle=False):
    """Write ``<stem>.npy`` for each video; returns ``(written_paths, failed_videos)``."""

    import numpy as np
    import paddle
    from tqdm import tqdm

    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.loader.pipelines.sample import repeated_frames_note
    from paddlevideo.modeling.builder import build_model_with_weights
    from paddlevideo.common.logger import get_logger

    logger = get_logger()
    model = build_model_with_weights(cfg.MODEL, weights, trust_pickle=trust_pickle)
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


def extract_window_features(cfg, weights, videos, output_dir, settings, trust_pickle=False):
    """Write ``<stem>.windows.npz`` (per-window features and times) for each video; returns
    ``(written_paths, failed_videos)``. A video that breaks off keeps its windows so far and counts as failed."""
    import json

    import numpy as np
    import paddle
    from tqdm import tqdm

    from paddlevideo.deploy.timeline import WindowStream
    from paddlevideo.loader.decoders import VideoOpenError
    from paddlevideo.modeling.builder import build_model_with_weights
    from paddlevideo.common.logger import get_logger
    from paddlevideo.cli import interrupt_requested
    from paddlevideo.common.errors import InputError

    logger = get_logger()
    model = build_model_with_weights(cfg.MODEL, weights, trust_pickle=trust_pickle)
    written, failed = [], []
    for path in videos:
        features, starts, ends = [], [], []
        try:
            with WindowStream(path, cfg, settings, should_stop=interrupt_requested) as stream:
                with tqdm(total=stream.total, desc=os.path.basename(path), unit="window", dynamic_ncols=True) as bar:
                    for batch in stream.batches():
                        with paddle.no_grad():
                            out = model.extract_feature(paddle.to_tensor(np.stack([w.imgs for w in batch])))
                        features.append(out.numpy().astype(np.float32))  # [B, embed_dim]
                        starts += [w.start_s for w in batch]
                        ends += [w.end_s for w in batch]
                        bar.update(len(batch))
        except (InputError, VideoOpenError) as err:
            logger.error("skipping video %s: %s", path, err)
            failed.append(path)
            continue
        if stream.error:
            logger.error("%s (its %d windows so far are written)", stream.error, len(starts))
            failed.append(path)
        if stream.stopped:
            return written, failed  # interrupted: cli.run reports it
        dim = cfg.MODEL.backbone.embed_dim
        stacked = np.concatenate(features) if features else np.zeros((0, dim), np.float32)
        out_path = feature_path(output_dir, path, ".windows.npz")
        info = json.dumps(dict(stream.plan.describe(), source=path, complete=not stream.error))

        def write(tmp, stacked=stacked, starts=starts, ends=ends, info=info):
            with open(tmp, "wb") as handle:  # np.savez on a name would append ".npz" to the temporary name
                np.savez(handle, features=stacked, start_s=np.asarray(starts, np.float64),
                         end_s=np.asarray(ends, np.float64), settings=np.asarray(info))

        written.append(write_atomically(out_path, write))
    return written, failed


def main(argv=None):
    args = parse_args(argv)
    from paddlevideo.config import get_config
    from paddlevideo.common.logger import setup_logger

    logger = setup_logger()
    overrides = list(args.override)
    if args.num_clips is not None:
        overrides.append(f"PIPELINE.test.decode.num_clips={args.num_clips}")
    cfg = get_config(args.config, overrides, show=False)
    videos = list_videos(args.input_file)
    prepare_output_dir(args.output_dir, "-o")  # before the model loads: a bad folder fails at once
    suffix = ".windows.npz" if args.windowed else ".npy"
    refuse_overwriting_inputs([("-o", feature_path(args.output_dir, video, suffix)) for video in videos],
                              [("--input_file", video) for video in videos] + [("-c", args.config),
                                                                                ("-w", args.weights)])
    if args.windowed:
        from paddlevideo.deploy.timeline import TimelineSettings

        # features are per window whatever it holds: no cut detection (it would convert every frame for nothing)
        settings = TimelineSettings(window_s=args.window_s, stride_s=args.stride_s, batch_size=args.batch_size,
                                    cuts="off")
        written, failed = extract_window_features(cfg, args.weights, videos, args.output_dir, settings,
                                                  args.trust_pickle)
    else:
        written, failed = extract_features(cfg, args.weights, videos, args.output_dir, args.trust_pickle)
    logger.info("wrote %d feature file(s) to %s", len(written), args.output_dir)
    if failed:
        names = ", ".join(failed[:5]) + (f", ... ({len(failed)} in all)" if len(failed) > 5 else "")
        if args.windowed:
            raise FeatureInputError(f"{len(failed)} of {len(videos)} video(s) could not be read or broke off (the "
                                    f"windows read before a break and the other videos were written): {names}")
        raise FeatureInputError(f"{len(failed)} of {len(videos)} video(s) could not be read and have no features "
                                f"(the others were written): {names}")
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
