#!/usr/bin/env python
"""Ctrl-C at random moments of the long-running tools: each must stop with exit 130 within --max_stop_s seconds,
print ``<tool>: interrupted`` last, and no traceback nor "Exception ignored"; what it wrote must be whole.

Not part of the test suite (30 interrupts of 6 tools take tens of minutes); tests/test_reliability_interrupts.py
runs a few. The tools run on the demo model (random weights) and generated demo clips made in --work_dir:

    visualize_attention   tools/visualize_attention.py over a folder of clips
    predict               tools/predict.py over a folder of clips (Paddle Inference on the exported model)
    quantize              tools/quantize.py (NNCF int8, calibrated on the clips)
    extract_features      tools/extract_features.py over a folder of clips
    train                 main.py training with validation
    test                  main.py --test

Each tool first runs once without interruption to time it (T); then each interrupt run sends SIGINT at a moment
drawn uniformly from [0, T] (start-up and imports included). A run that ended before the signal was sent is
drawn again, and T becomes that run's length (later runs are faster than the first, cold one). A signal in the
interpreter's own start-up (its first ~20 ms) or while the tool's first line imports the guard (~10 ms) ends the
process by Python's own handling (killed silently, or a ``KeyboardInterrupt`` traceback; status -2, which a
shell reports as 130): counted apart, as no code of the tool can act there. Output checks after each
interrupted run: no staging folder or temporary file left, every attention folder has its four files, an int8
model has its record, every checkpoint loads.

Example::

    python tools/stress_interrupts.py --work_dir /tmp/stress --count 30
    python tools/stress_interrupts.py --work_dir /tmp/stress --tools predict quantize --count 5 --seed 1
"""

import _bootstrap  # tools/_bootstrap.py: this clone on sys.path unless installed (its ROOT), quiet warnings
from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("stress_interrupts.py", __name__)
import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from paddlevideo.cli import add_debug_flag, print_error, run  # noqa: E402
from paddlevideo.common.files import prepare_output_dir  # noqa: E402
from paddlevideo.common.errors import RunError  # noqa: E402

PROG = "stress_interrupts.py"
REPO = _bootstrap.ROOT
CONFIG = os.path.join(REPO, "configs", "recognition", "timesformer", "timesformer_demo_videos.yaml")
TOOLS = ("visualize_attention", "predict", "quantize", "extract_features", "train", "test")
NUM_CLIPS = 48  # generated val clips (default): enough work for each tool to be interrupted mid-way
ATTENTION_FILES = ("attention_grid.png", "attention.gif", "temporal_share.png", "attention.json")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--work_dir", required=True, help="folder for the clips, the model and the tools' outputs")
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS), help="tools to interrupt")
    parser.add_argument("--count", type=int, default=30, help="interrupts per tool")
    parser.add_argument("--max_stop_s", type=float, default=10.0, help="longest allowed time from signal to exit")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random moments")
    parser.add_argument("--clips", type=int, default=NUM_CLIPS, help="generated clips the tools work on")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.count < 1 or args.clips < 1:
        parser.error("--count and --clips must be >= 1")
    return args


def prepare(work, clips):
    """``clips`` demo clips, random demo-model weights, its export and a config pointing at the clips (made once
    per ``work`` folder and clip count)."""
    import paddle

    from paddlevideo.deploy.export import export_model
    from paddlevideo.loader.demo_data import demo_dataset_is_current, make_demo_dataset
    from paddlevideo.modeling.builder import build_model
    from paddlevideo.utils import get_config
    from paddlevideo.config import save_config

    data = os.path.join(work, f"data{clips}")
    if not demo_dataset_is_current(data, 16, clips, 0):
        make_demo_dataset(data, num_train=16, num_val=clips, seed=0)
    lists = {"train": "train.list", "valid": "val.list", "test": "val.list"}
    overrides = [f"DATASET.{mode}.data_prefix={data}" for mode in lists]
    overrides += [f"DATASET.{mode}.file_path={os.path.join(data, name)}" for mode, name in lists.items()]
    cfg = get_config(CONFIG, overrides + ["DATASET.batch_size=4", "GRADIENT_ACCUMULATION.global_batch_size=4",
                                          "DATASET.test_batch_size=4", "log_interval=1"], show=False)
    config = save_config(cfg, os.path.join(work, f"demo{clips}.yaml"))
    weights = os.path.join(work, "weights.pdparams")
    if not os.path.isfile(weights):
        paddle.seed(0)
        paddle.save(build_model(cfg.MODEL).state_dict(), weights)
    model = os.path.join(work, "export", "TimeSformer_demo.pdmodel")
    if not os.path.isfile(model):
        export_model(cfg, weights, os.path.join(work, "export"))
    return {"data": data, "config": config, "weights": weights, "model": model, "clips": clips}


def commands(tool, setup, out):
    """The command line of ``tool`` writing into ``out`` (a fresh folder per run)."""
    python, data, config = sys.executable, setup["data"], setup["config"]
    videos = os.path.join(data, "val")
    if tool == "visualize_attention":
        return [python, "tools/visualize_attention.py", "-c", config, "-w", setup["weights"], "-i", videos,
                "-o", out]
    if tool == "predict":
        return [python, "tools/predict.py", "-c", config, "-i", videos, "--model_file", setup["model"],
                "--visualize", out]
    if tool == "quantize":
        return [python, "tools/quantize.py", "-c", config, "--model_file", setup["model"], "--calib_list",
                os.path.join(data, "val.list"), "--num_clips", str(setup["clips"]),
                "--output", os.path.join(out, "model.int8.xml")]
    if tool == "extract_features":
        return [python, "tools/extract_features.py", "-c", config, "-w", setup["weights"], "--input_file", videos,
                "-o", out]
    if tool == "train":
        return [python, "main.py", "-c", config, "--validate", "-o", f"output_dir={out}", "epochs=3"]
    return [python, "main.py", "--test", "-c", config, "-w", setup["weights"], "--output_dir", out]


def start(cmd):
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("PADDLEVIDEO_DEBUG", None)
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def time_one_run(cmd):
    began = time.monotonic()
    proc = start(cmd)
    _, err = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise RunError(f"{' '.join(cmd)} failed without an interrupt (exit {proc.returncode}): {err[-2000:]}")
    return time.monotonic() - began


def output_problems(tool, out):
    """What an interrupted run left that is not whole: staging folders, temporary files, partial folders."""
    problems = []
    if not os.path.isdir(out):
        return problems
    for root, folders, files in os.walk(out):
        for name in folders + files:
            if ".staging-" in name or ".replaced-" in name or name.endswith((".tmp", ".partial")) or ".partial." in name:
                problems.append(f"left {os.path.join(root, name)}")
    if tool == "visualize_attention":
        for name in os.listdir(out):
            path = os.path.join(out, name)
            if os.path.isdir(path) and not name.startswith(".") and sorted(os.listdir(path)) != sorted(ATTENTION_FILES):
                problems.append(f"partial folder {path}: {sorted(os.listdir(path))}")
    if tool == "quantize" and os.path.isfile(os.path.join(out, "model.int8.xml")):
        for name in ("model.int8.bin", "model.int8.provenance.json"):
            if not os.path.isfile(os.path.join(out, name)):
                problems.append(f"model.int8.xml without {name}")
    if tool == "train":
        import paddle

        for name in os.listdir(out):
            if name.endswith((".pdparams", ".pdopt")):
                try:
                    paddle.load(os.path.join(out, name))
                except Exception as err:  # noqa: BLE001 - any failure to load is what is being looked for
                    problems.append(f"{name} does not load ({type(err).__name__})")
    return problems


def before_the_guard(code, err):
    """Whether the signal came before the tool's first line could act: in the interpreter's start-up, where the
    signal's default action kills the process silently (status -2, a shell's 130), or while the first line
    imports the guard itself (Python's own ``KeyboardInterrupt``, then status -2)."""
    if code != -signal.SIGINT:
        return False
    lines = err.strip().splitlines()
    return not lines or (lines[-1] == "KeyboardInterrupt" and ("import guard_start_up" in err or REPO not in err))


def interrupt_once(tool, cmd, out, delay, max_stop_s):
    """One run interrupted after ``delay`` seconds: a dict with ``finished_first``, ``code``, ``stop_s``,
    ``problems``."""
    began = time.monotonic()
    proc = start(cmd)
    deadline = began + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.communicate()
            return {"finished_first": True, "took_s": time.monotonic() - began}
        time.sleep(0.005)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=max_stop_s + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    stop_s = time.monotonic() - sent
    prog = os.path.basename(cmd[1])
    lines = [line for line in err.splitlines() if line.strip()]
    problems = []
    if proc.returncode == 0:  # the signal landed after the work (while the interpreter exited)
        return {"finished_first": True, "took_s": sent - began}
    if before_the_guard(proc.returncode, err):
        return {"finished_first": False, "code": 130, "stop_s": stop_s, "problems": [], "killed_at_start": True,
                "stderr": err[-1500:]}
    if proc.returncode != 130:
        problems.append(f"exit {proc.returncode}")
    if stop_s > max_stop_s:
        problems.append(f"stopped after {stop_s:.1f} s")
    if "Traceback" in err:
        problems.append("traceback")
    if "Exception ignored" in err:
        problems.append("'Exception ignored'")
    if not lines or lines[-1] != f"{prog}: interrupted":
        problems.append(f"last line {lines[-1] if lines else '(none)'!r}")
    problems += output_problems(tool, out)
    return {"finished_first": False, "code": proc.returncode, "stop_s": stop_s, "problems": problems,
            "killed_at_start": False, "stderr": err[-1500:]}


def stress(tool, setup, work, count, max_stop_s, rng):
    """``count`` interrupted runs of ``tool``; returns its summary row."""
    import shutil

    duration = time_one_run(commands(tool, setup, os.path.join(work, "runs", tool, "timing")))
    runs, redrawn = [], 0
    while len(runs) < count:
        out = os.path.join(work, "runs", tool, str(len(runs)))
        shutil.rmtree(out, ignore_errors=True)
        result = interrupt_once(tool, commands(tool, setup, out), out, rng.uniform(0.0, duration), max_stop_s)
        if result["finished_first"]:
            redrawn += 1
            duration = min(duration, result["took_s"])  # runs after the first (cold) one are faster: draw within
            if redrawn > 3 * count:
                raise RunError(f"{tool}: the run keeps ending before the signal; is it too short?")
            continue
        runs.append(result)
        mark = "ok" if not result["problems"] else "FAIL: " + "; ".join(result["problems"])
        if result["killed_at_start"]:
            mark = "ended by Python's own start-up handling, before the tool's first line could act (status -2)"
        print(f"{tool} #{len(runs)}: exit {result['code']} {result['stop_s']:.2f} s after SIGINT: {mark}", flush=True)
        if result["problems"]:
            print(result["stderr"], file=sys.stderr, flush=True)
    return {"tool": tool, "run_s": duration, "runs": len(runs), "exit_130": sum(r["code"] == 130 for r in runs),
            "max_stop_s": max(r["stop_s"] for r in runs), "failed": sum(bool(r["problems"]) for r in runs),
            "at_start": sum(r["killed_at_start"] for r in runs), "redrawn": redrawn}


def main(argv=None):
    args = parse_args(argv)
    prepare_output_dir(args.work_dir, "--work_dir")
    setup = prepare(os.path.abspath(args.work_dir), args.clips)
    rng = random.Random(args.seed)
    rows = [stress(tool, setup, os.path.abspath(args.work_dir), args.count, args.max_stop_s, rng) for tool in args.tools]
    print("\n| tool | one run (s) | interrupts | exit 130 | of which before the guard (status -2) | slowest stop (s) "
          "| failed | redrawn |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['tool']} | {row['run_s']:.1f} | {row['runs']} | {row['exit_130']} | {row['at_start']} | "
              f"{row['max_stop_s']:.2f} | {row['failed']} | {row['redrawn']} |")
    failed = sum(row["failed"] for row in rows)
    if failed:
        print_error(PROG, f"{failed} interrupted run(s) did not end cleanly (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
