#!/usr/bin/env python
"""Draw where a TimeSformer looks: space-time attention rollout over the frames of a video.

Examples::

    python tools/visualize_attention.py -c configs/recognition/timesformer/timesformer_demo_videos.yaml \\
        -w output/TimeSformer_demo/TimeSformer_demo_best.pdparams --input_file data/demo/val/000001.avi -o vis/
    python tools/visualize_attention.py -c CONFIG -w WEIGHTS --input_file videos/ -o vis/ --heads max --view left

For each video, ``OUT/<video name>/`` gets ``attention_grid.png`` (the sampled frames and the heat map over
each), ``attention.gif`` (the overlay animated), ``temporal_share.png`` (each frame's share) and
``attention.json`` (the raw maps, shares and the prediction). The clip is the config's test pipeline
(``PIPELINE.test``), one spatial view (``--view``, the centre crop by default). The method:
docs/visualization.md. Divided, joint and space-only models all work.

Each video's folder is written whole (staged, then moved into place: never a mix of an earlier run's files and
this one's, never a partial folder); an existing folder is only replaced when it holds nothing but these four
files. ``-o`` is checked (created, written to) before the model loads; no output may be an input.
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("visualize_attention.py", __name__)
import argparse  # noqa: E402

from paddlevideo.cli import add_debug_flag, add_trust_pickle_flag, print_error, run  # noqa: E402
from paddlevideo.common.files import output_name  # noqa: E402
from paddlevideo.common.logger import log_to_stderr  # noqa: E402

PROG = "visualize_attention.py"
VIEWS = ("left", "centre", "right")  # paddlevideo.visualization.views.VIEWS (imported late: paddle is slow)
HEADS = ("mean", "max")  # paddlevideo.visualization.rollout.HEAD_FUSIONS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-c", "--config", required=True, help="the model's config (its PIPELINE.test makes the clip)")
    parser.add_argument("-w", "--weights", required=True, help="trained weights, .pdparams")
    parser.add_argument("-i", "--input_file", required=True,
                        help="a video file, or a folder of videos (not recursive)")
    parser.add_argument("-o", "--output", required=True, help="output folder; one sub-folder per video")
    parser.add_argument("--view", choices=VIEWS, default="centre",
                        help="spatial view of the test pipeline (left/right need UniformCrop's 3 views)")
    parser.add_argument("--heads", choices=HEADS, default="mean",
                        help="how the heads of a layer are fused: their mean, or their maximum (renormalised)")
    parser.add_argument("--top_k", type=int, default=3, help="classes listed in the title and the JSON")
    parser.add_argument("--label_file", default=None,
                        help="class names, 'id name' per line; without it the list the config names, if any")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value (repeatable)")
    add_trust_pickle_flag(parser, "the -w weights")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top_k must be >= 1")
    return args


def output_folders(files, output):
    """One sub-folder per video, named after the file's stem (``name.ext`` when two videos share a stem)."""
    stems = [output_name(os.path.splitext(os.path.basename(path))[0]) for path in files]
    return [os.path.join(output, stem if stems.count(stem) == 1 else output_name(path))
            for stem, path in zip(stems, files)]


def visualize_video(path, folder, model, pipeline, args, label_names, warn):
    """Rollout of one video -> the four files in ``folder``, written whole; returns the JSON record's prediction.

    Raises:
        OutputError: ``folder`` cannot be written (the run stops: the output, not this video, is at fault).
        Exception: the video cannot be read or used (reported, the run goes on).
    """
    from paddlevideo.deploy.predict import softmax, top_k
    from paddlevideo.loader.pipelines.sample import repeated_frames_note
    from paddlevideo.common.files import os_error_reason
    from paddlevideo.common.errors import OutputError
    from paddlevideo.common.staging import staged_folder
    from paddlevideo.visualization.attention import explain_clip
    from paddlevideo.visualization.heatmap import FIGURE_FILES, save_attention_figures
    from paddlevideo.visualization.views import display_frames, select_view

    results = pipeline({"filename": path})
    note = repeated_frames_note(results)
    if note:
        warn(note)
    clip, frame_indices = select_view(results, model.num_seg, args.view)
    scores, rollout = explain_clip(model, clip, args.heads)
    ids, probs = top_k(softmax(scores)[0], args.top_k)
    names = [label_names.get(i, str(i)) for i in ids] if label_names else [str(i) for i in ids]
    title = (f"{os.path.basename(path)}: " + ", ".join(f"{n} {p:.2f}" for n, p in zip(names, probs))
             + f"  (view {args.view}, heads {args.heads})")
    prediction = {"class_ids": ids, "class_names": names if label_names else None, "scores": probs}
    try:
        with staged_folder(folder, FIGURE_FILES, flag="-o") as staging:
            save_attention_figures(staging, display_frames(clip, pipeline), rollout.maps[0],
                                   rollout.temporal_share[0], frame_indices, title, video=os.path.abspath(path),
                                   view=args.view, heads=args.heads, attention_type=model.backbone.attention_type,
                                   grid=list(rollout.maps.shape[2:]), cls_self=float(rollout.cls_self[0]),
                                   prediction=prediction)
    except OSError as err:
        what, advice = os_error_reason(err)
        raise OutputError(f"-o: cannot write '{folder}' ({what}); {advice}; no video's folder is left "
                          "half-written") from err
    return prediction


def check_outputs(args, files, folders):
    """Before any work: ``-o`` is created and written to, no video's folder replaces one that holds other files,
    and none holds (or is) an input."""
    from paddlevideo.common.files import prepare_output_dir
    from paddlevideo.common.overwrite import refuse_overwriting_inputs
    from paddlevideo.common.staging import check_replaceable
    from paddlevideo.visualization.heatmap import FIGURE_FILES

    prepare_output_dir(args.output, "-o")
    for folder in folders:
        check_replaceable(folder, FIGURE_FILES, "-o")
    inputs = [("--input_file", path) for path in files] + [("-c", args.config), ("-w", args.weights),
                                                          ("--label_file", args.label_file)]
    refuse_overwriting_inputs([("-o", folder) for folder in folders], inputs, replaces_folder=True)


def main(argv=None):
    args = parse_args(argv)
    log_to_stderr()
    from paddlevideo.runtime import configure_cpu

    configure_cpu()  # before the first matmul (MKL's code path on AMD, malloc reuse)
    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.modeling.builder import build_model_with_weights
    from paddlevideo.deploy.errors import PredictError
    from paddlevideo.common.errors import OutputError, first_line
    from paddlevideo.loader.video_files import list_videos
    from paddlevideo.loader.labels import read_label_names
    from paddlevideo.config import get_config

    cfg = get_config(args.config, args.override, show=False)
    files = list_videos(args.input_file)
    folders = output_folders(files, args.output)
    check_outputs(args, files, folders)
    label_names = read_label_names(cfg, args.label_file, instead="using class ids")
    if not os.path.isfile(args.weights):
        raise PredictError(f"weights '{args.weights}' not found; pass a .pdparams file with -w")
    pipeline = build_pipeline(cfg.PIPELINE.test, "test")
    model = build_model_with_weights(cfg.MODEL, args.weights, trust_pickle=args.trust_pickle)

    progress = files
    if len(files) > 1:
        from tqdm import tqdm

        progress = tqdm(files, desc="attention", unit="video", file=sys.stderr, dynamic_ncols=True)
    from paddlevideo.visualization.files import VisualizationError

    def say(line, stream=sys.stdout):
        (progress.write if progress is not files else print)(line, file=stream)

    failed = 0
    for path, folder in zip(progress, folders):
        try:
            prediction = visualize_video(path, folder, model, pipeline, args, label_names,
                                         lambda note: say(f"WARNING: {note}", sys.stderr))
        except (VisualizationError, OutputError):  # the config, the flags or the output, not this video: stop
            if progress is not files:
                progress.close()
            raise
        except Exception as err:  # a broken video: report it, go on with the others
            failed += 1
            message = first_line(err)
            say(f"{PROG}: error: {message if path in message else f'{path}: {message}'}", sys.stderr)
            continue
        name = (prediction["class_names"] or prediction["class_ids"])[0]
        say(f"{path}: top-1 {name} ({prediction['scores'][0]:.4f}) -> {folder}")
    if progress is not files:
        progress.close()
    if failed:
        print_error(PROG, f"{failed} of {len(files)} video(s) could not be visualised")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
