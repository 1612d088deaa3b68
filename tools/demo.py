"""The README quick start in one command: demo data -> train (--validate) -> test -> export -> predict ->
the timeline of a long demo video.

Each step runs as the command a user would type (printed before it runs), so the output doubles as a
tutorial. The full run trains the recipe in configs/recognition/timesformer/timesformer_demo_videos.yaml
(about 2.5 minutes on 2 CPU cores); --quick is a CI-sized smoke run of every step (accuracy not
meaningful). It leaves pictures to look at in the output folder: training_curves.png, the test report's
test_report/confusion_matrix.png and predictions/<clip>.mp4, a prediction drawn on its video
(docs/visualization.md), and timeline/demo_long.timeline.png, what the model sees when in a long video of
demo segments, above the true segments (docs/timeline.md).

Examples:
    python tools/demo.py
    python tools/demo.py --quick
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)
from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("demo.py", __name__)
import argparse  # noqa: E402
import functools  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from paddlevideo.loader.demo_data import demo_dataset_is_current  # noqa: E402  (numpy only, no paddle)
from paddlevideo.cli import Interrupted, add_debug_flag, run  # noqa: E402
from paddlevideo.common.errors import RunError  # noqa: E402

PROG = "demo.py"
# After an interrupt, how long a step may take to stop cleanly (it saves nothing half-written) before it is killed.
STEP_STOP_TIMEOUT_S = 30
CONFIG = "configs/recognition/timesformer/timesformer_demo_videos.yaml"
MODEL_NAME = "TimeSformer_demo"


# A step of the demo exited non-zero (it printed its own error line above).
StepFailed = RunError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 320 train / 64 val clips, 2 epochs (under a minute)")
    parser.add_argument("--data_dir", default=None, help="demo data folder (default data/demo, data/demo_quick)")
    parser.add_argument("--output_dir", default=None,
                        help=f"training output (default output/{MODEL_NAME}, output/{MODEL_NAME}_quick)")
    parser.add_argument("--inference_dir", default=None,
                        help=f"exported model (default inference/{MODEL_NAME}, inference/{MODEL_NAME}_quick)")
    parser.add_argument("--seed", type=int, default=1234, help="training seed (default 1234)")
    add_debug_flag(parser)
    return parser.parse_args(argv)


def run_step(cmd, debug=False):
    """Print and run one command from the repository root; stop the demo if it fails.

    On Ctrl-C or SIGTERM the step gets the same signal and up to STEP_STOP_TIMEOUT_S to stop cleanly
    (it prints its own ``interrupted``), then the demo stops too.
    """
    print("\n$ " + " ".join(shlex.quote(part) for part in cmd), flush=True)
    tic = time.time()
    argv = [sys.executable if part == "python" else part for part in cmd] + (["--debug"] if debug else [])
    child = subprocess.Popen(argv, cwd=REPO)
    try:
        code = child.wait()
    except Interrupted as interrupt:
        _stop(child, interrupt.signum)
        raise
    except BaseException:
        _stop(child, signal.SIGTERM)
        raise
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM):
        raise Interrupted(abs(code) - 128 if code > 0 else -code)  # the step was stopped by a signal
    if code != 0:
        raise StepFailed(f"the step above failed (exit code {code}); see its message")
    print(f"[demo] step finished in {time.time() - tic:.0f} s", flush=True)


def _stop(child, signum):
    if child.poll() is None:
        child.send_signal(signum)  # a terminal's Ctrl-C reached it already; a `kill` of the demo did not
        try:
            child.wait(timeout=STEP_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv=None):
    args = parse_args(argv)
    step = functools.partial(run_step, debug=args.debug)
    suffix = "_quick" if args.quick else ""
    data_dir = args.data_dir or f"data/demo{suffix}"
    out_dir = args.output_dir or f"output/{MODEL_NAME}{suffix}"
    infer_dir = args.inference_dir or f"inference/{MODEL_NAME}{suffix}"
    num_train, num_val = (320, 64) if args.quick else (2000, 200)

    data = []
    for mode, name in (("train", "train"), ("valid", "val"), ("test", "val")):
        data += [f"DATASET.{mode}.data_prefix={data_dir}", f"DATASET.{mode}.file_path={data_dir}/{name}.list"]
    overrides = ["-o", *data, f"output_dir={out_dir}"]
    if args.quick:
        overrides += ["epochs=2", "OPTIMIZER.learning_rate.warmup_steps=10", "log_interval=10"]

    if demo_dataset_is_current(os.path.join(REPO, data_dir), num_train, num_val, seed=0):
        print(f"[demo] using the existing demo data in {data_dir}")
    else:  # missing, incomplete, other settings or made by an older generator
        step(["python", "tools/make_demo_data.py", "--output", data_dir, "--num_train", str(num_train),
              "--num_val", str(num_val), "--seed", "0"])
    step(["python", "main.py", "-c", CONFIG, "--validate", "--seed", str(args.seed), *overrides])
    best = f"{out_dir}/{MODEL_NAME}_best.pdparams"
    step(["python", "main.py", "--test", "-c", CONFIG, "-w", best, *overrides,
          f"label_file={data_dir}/label_list.txt"])  # class names in test_report/
    step(["python", "tools/export_model.py", "-c", CONFIG, "-p", best, "-o", infer_dir])
    step(["python", "tools/predict.py", "-c", CONFIG, "-i", f"{data_dir}/val/000001.avi",
          "--model_file", f"{infer_dir}/{MODEL_NAME}.pdmodel", "--params_file", f"{infer_dir}/{MODEL_NAME}.pdiparams",
          "--label_file", f"{data_dir}/label_list.txt", "--top_k", "2",
          "--visualize", f"{out_dir}/predictions", "--visualize_scale", "8"])
    # What happens when: the model's timeline of a long video made of demo segments, drawn above the truth.
    long_video = f"{data_dir}/long/demo_long.avi"
    step(["python", "tools/make_demo_long_video.py", "--output", long_video,
          "--segments", "6" if args.quick else "24", "--seed", "0"])
    step(["python", "tools/predict.py", "-c", CONFIG, "-i", long_video,
          "--model_file", f"{infer_dir}/{MODEL_NAME}.pdmodel", "--params_file", f"{infer_dir}/{MODEL_NAME}.pdiparams",
          "--label_file", f"{data_dir}/label_list.txt", "--timeline", f"{out_dir}/timeline", "--smooth", "5",
          "--batch_size", "16", "--timeline_truth", f"{data_dir}/long/demo_long.truth.csv"])
    print(f"\n[demo] done: weights in {out_dir}, exported model in {infer_dir}")
    print(f"[demo] pictures: {out_dir}/training_curves.png, {out_dir}/test_report/confusion_matrix.png, "
          f"{out_dir}/predictions/000001.avi.mp4 (docs/visualization.md), "
          f"{out_dir}/timeline/demo_long.timeline.png (docs/timeline.md)")
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
