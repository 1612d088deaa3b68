"""Every flag of PaddleVideo's main.py, tools/export_model.py and tools/predict.py is accepted here: the ones that
can work do (tested where they act), the others end or warn in one line saying why."""

import subprocess
import sys

import pytest

from conftest import REPO
from engine_helpers import data_overrides, error_line, make_data, run_main
from helpers import load_tool

# PaddleVideo's flags (its argparse definitions), each with a value it takes; "" for a switch.
PADDLEVIDEO_FLAGS = {
    "main.py": {"-c": "C.yaml", "--config": "C.yaml", "-o": "epochs=1", "--override": "epochs=1", "--test": "",
                "--train_dali": "", "--multigrid": "", "-w": "w.pdparams", "--weights": "w.pdparams", "--fleet": "",
                "--amp": "", "--amp_level": "O1", "--validate": "", "--seed": "3", "--max_iters": "30",
                "-p": "batch_range=[10,20]", "--profiler_options": "batch_range=[10,20]"},
    "tools/export_model.py": {"-c": "C.yaml", "--config": "C.yaml", "--override": "epochs=1", "-p": "w.pdparams",
                              "--pretrained_params": "w.pdparams", "-o": "out", "--output_path": "out",
                              "--save_name": "inference"},
    "tools/predict.py": {"-c": "C.yaml", "--config": "C.yaml", "-o": "epochs=1", "--override": "epochs=1",
                         "-i": "v.avi", "--input_file": "v.avi", "--time_test_file": "False", "--model_file": "m.pdmodel",
                         "--params_file": "m.pdiparams", "-b": "1", "--batch_size": "1", "--use_gpu": "False",
                         "--use_xpu": "False", "--use_npu": "False", "--precision": "fp32", "--ir_optim": "True",
                         "--use_tensorrt": "False", "--gpu_mem": "8000", "--enable_benchmark": "True",
                         "--enable_mkldnn": "False", "--cpu_threads": "2", "--disable_glog": "True",
                         "--hubserving": "False"},
}
# what each tool needs besides the flag under test, so that argparse gets a complete command line
BASE = {"main.py": ["-c", "C.yaml"], "tools/export_model.py": ["-c", "C.yaml", "-p", "w.pdparams"],
        "tools/predict.py": ["-c", "C.yaml", "-i", "v.avi", "--model_file", "m.pdmodel"]}
# flags that need a partner flag in this project's stricter checks
PARTNER = {("main.py", "--test"): ["-w", "w.pdparams"], ("main.py", "--amp_level"): ["--amp"]}


@pytest.mark.parametrize("tool, flag", [(tool, flag) for tool, flags in PADDLEVIDEO_FLAGS.items() for flag in flags])
def test_every_paddlevideo_flag_parses(tool, flag):
    parse = load_tool(tool).parse_args
    value = PADDLEVIDEO_FLAGS[tool][flag]
    argv = BASE[tool] + PARTNER.get((tool, flag), []) + ([f"{flag}={value}"] if value and flag.startswith("--")
                                                         else [flag, value] if value else [flag])
    args = parse(argv)  # argparse exits (SystemExit) on an unknown flag or value
    dest = {"-c": "config", "-o": "override" if tool != "tools/export_model.py" else "output_path", "-w": "weights",
            "-i": "input_file", "-b": "batch_size", "-p": "profiler_options" if tool == "main.py" else "pretrained_params"}
    name = dest.get(flag, flag.lstrip("-"))
    assert hasattr(args, name), (flag, name)


def test_main_cannot_run_other_trainers_and_says_why(tmp_path):
    for flag, words in (("--multigrid", "multigrid training schedule for SlowFast"),
                        ("--train_dali", "DALI GPU data loader for TSN")):
        line = error_line(run_main(["-c", "configs/recognition/timesformer/timesformer_demo_videos.yaml", flag]))
        assert flag in line and words in line


def test_predict_hubserving_is_an_error_and_xpu_a_warning():
    proc = subprocess.run([sys.executable, "tools/predict.py", "-c", "C.yaml", "-i", "v.avi", "--model_file", "m.pdmodel",
                           "--hubserving=True"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("predict.py: error: --hubserving")
    predict = load_tool("tools/predict.py")
    args = predict.parse_args(["-c", "C.yaml", "-i", "v.avi", "--model_file", "m.pdmodel", "--use_xpu=True"])

    class Log:
        lines = []

        def warning(self, fmt, *values):
            self.lines.append(fmt % values)

    log = Log()
    predict._resolve_device(args, log)
    assert len(log.lines) == 1 and "--use_xpu=True" in log.lines[0] and "running on the CPU" in log.lines[0]


def test_predict_reads_a_time_test_file(tmp_path):
    predict = load_tool("tools/predict.py")
    listing = tmp_path / "videos.txt"
    listing.write_text("a.avi\n\nb/c.mp4\n")
    assert predict.read_video_list(str(listing)) == ["a.avi", "b/c.mp4"]
    listing.write_text("\n")
    from paddlevideo.deploy.errors import PredictError

    with pytest.raises(PredictError, match="lists no video"):
        predict.read_video_list(str(listing))


def test_profiler_options_profile_a_range_and_stop(tmp_path):
    """-p with PaddleVideo's option string: iterations 1-2 profiled (a Chrome trace with timer_only=False), training
    stops after iteration 3 (exit_on_finished), exit 0; a malformed string is one line."""
    data = make_data(tmp_path / "data", num_train=8, num_val=2)
    assert data
    out = tmp_path / "out"
    proc = run_main(["-c", "configs/recognition/timesformer/timesformer_demo_videos.yaml", "-p",
                     "batch_range=[1,3]; timer_only=False; profile_path=model.profile", "-o",
                     *data_overrides(tmp_path / "data"), "DATASET.batch_size=1", "GRADIENT_ACCUMULATION.global_batch_size=1",
                     "log_interval=1", f"output_dir={out}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    assert "profiling training iterations 1..2" in text and "Overview Summary" in text
    assert list((out / "profiler_log").glob("*.json"))
    assert "train step:2 " in text and "train step:3 " not in text
    line = error_line(run_main(["-c", "configs/recognition/timesformer/timesformer_demo_videos.yaml", "-p",
                                "batch_range=[5,2]", "-o", *data_overrides(tmp_path / "data"),
                                f"output_dir={tmp_path / 'bad'}"]))
    assert "batch_range" in line
