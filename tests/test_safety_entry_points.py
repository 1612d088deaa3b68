"""Every command that reads a checkpoint refuses a hostile one: no marker file, exit 1, one line naming the file.

The hostile file is the issue's case: the tiny model's real state dict with ``backbone.cls_token`` replaced by
an object whose unpickling calls ``os.system('touch <marker>')`` (and, for ``--resume``, an optimizer state with
such a value). The commands run as a user runs them, in subprocesses started together to keep the suite fast;
the payload variants (eval, exec, getattr, subprocess, importlib, ``__setstate__``, nesting, big-parameter
chunks) are covered against the library loader in ``test_safety_checkpoints.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hostile_files as hf
from conftest import K400_CONFIG, TINY_OVERRIDES

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PADDLEVIDEO_FAST_CPU_OPS": "0", "PYTHONPATH": str(REPO)}  # nothing to compile
ENV.pop("PADDLEVIDEO_DEBUG", None)
TIMEOUT = 300


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Tiny config (with a 4-clip dataset), its real weights and optimizer state, and a clip."""
    import paddle

    from paddlevideo.loader.demo_data import make_demo_dataset
    from paddlevideo.modeling import build_model
    from paddlevideo.config import get_config
    from paddlevideo.config import save_config

    folder = tmp_path_factory.mktemp("safety")
    data = folder / "data"
    make_demo_dataset(str(data), num_train=4, num_val=2, seed=0, num_frames=8, size=32)
    lists = [f"DATASET.{mode}.{key}={value}" for mode, name in (("train", "train"), ("valid", "val"), ("test", "val"))
             for key, value in (("data_prefix", data), ("file_path", data / f"{name}.list"))]
    batch = ["DATASET.batch_size=2", "GRADIENT_ACCUMULATION.global_batch_size=2", "epochs=2"]
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES + lists + batch, show=False)
    save_config(cfg, folder / "tiny.yaml")
    model = build_model(cfg.MODEL)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    paddle.save(model.state_dict(), str(folder / "real.pdparams"))
    clip = sorted(data.rglob("*.avi"))[0]
    return {"folder": folder, "config": folder / "tiny.yaml", "state": state, "clip": clip}


def _hostile_weights(files, name):
    marker = files["folder"] / f"marker_{name}"
    state = dict(files["state"], **{"backbone.cls_token": hf.Call(os.system, f"touch '{marker}'")})
    return hf.write(files["folder"] / f"{name}.pdparams", state), marker


def _hostile_optimizer(files, name):
    marker = files["folder"] / f"marker_{name}"
    state = {"optimizer": {"LR_Scheduler": {"last_epoch": hf.Call(os.system, f"touch '{marker}'")}}, "epoch": 1}
    return hf.write(files["folder"] / f"{name}.pdopt", state), marker


def _resume_folder(files, name, hostile):
    """An output folder holding epoch 1's pair, one of them hostile (``.pdparams`` or ``.pdopt``)."""
    from paddlevideo.tasks.run_files import epoch_prefix

    out = files["folder"] / name
    out.mkdir()
    prefix = epoch_prefix(str(out), "TimeSformer", 1)
    real = (files["folder"] / "real.pdparams").read_bytes()
    if hostile == ".pdopt":
        path, marker = _hostile_optimizer(files, name)
        Path(prefix + ".pdparams").write_bytes(real)
    else:
        path, marker = _hostile_weights(files, name)
        hf.write(prefix + ".pdopt", {"optimizer": {}, "epoch": 1})
    os.replace(path, prefix + hostile)
    return out, Path(prefix + hostile), marker


def _commands(files):
    """``{case: (argv, hostile file, marker)}`` for every entry point that reads a checkpoint."""
    cfg, clip, folder = str(files["config"]), str(files["clip"]), files["folder"]
    cases = {}
    for name, make in (
            ("test", lambda w: ["main.py", "--test", "-c", cfg, "-w", w, "--output_dir", str(folder / "o_test")]),
            ("export", lambda w: ["main.py", "--export", "-c", cfg, "-w", w, "--output_dir", str(folder / "o_exp")]),
            ("pretrained", lambda w: ["main.py", "-c", cfg, "-o", f"MODEL.backbone.pretrained={w}",
                                      f"output_dir={folder / 'o_pre'}"]),
            ("export_model", lambda w: ["tools/export_model.py", "-c", cfg, "-p", w, "-o", str(folder / "o_em")]),
            ("visualize", lambda w: ["tools/visualize_attention.py", "-c", cfg, "-w", w, "-i", clip, "-o",
                                     str(folder / "o_vis")]),
            ("features", lambda w: ["tools/extract_features.py", "-c", cfg, "-w", w, "--input_file", clip, "-o",
                                    str(folder / "o_feat")]),
            ("precisions", lambda w: ["tools/compare_precisions.py", "-c", cfg, "-w", w, "--clips", clip,
                                      "--work_dir", str(folder / "o_prec")])):
        path, marker = _hostile_weights(files, name)
        cases[name] = (make(str(path)), path, marker)
    for name, suffix in (("resume_pdopt", ".pdopt"), ("resume_pdparams", ".pdparams")):
        out, path, marker = _resume_folder(files, name, suffix)
        cases[name] = (["main.py", "-c", cfg, "--resume", "-o", f"output_dir={out}"], path, marker)
    return cases


def _run_all(commands, parallel=3):
    """Run ``{case: argv}`` with ``parallel`` processes at a time; ``{case: CompletedProcess}``."""
    pending, running, done = list(commands.items()), {}, {}
    while pending or running:
        while pending and len(running) < parallel:
            case, argv = pending.pop(0)
            running[case] = subprocess.Popen([sys.executable, str(REPO / argv[0]), *argv[1:]], cwd=REPO, env=ENV,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        case, proc = next(iter(running.items()))
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{case} hung\n{err[-2000:]}")
        done[case] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        del running[case]
    return done


def test_every_entry_point_refuses_a_hostile_checkpoint(files):
    cases = _commands(files)
    results = _run_all({case: argv for case, (argv, _, _) in cases.items()})
    for case, (argv, path, marker) in cases.items():
        proc = results[case]
        prog = Path(argv[0]).name
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1, (case, proc.returncode, proc.stderr[-3000:])
        assert lines and lines[-1] == (f"{prog}: error: '{path}' is not a plain checkpoint: it asks to call "
                                       "os.system; refusing to load it. If you trust this file, pass --trust-pickle"), \
            (case, proc.stderr[-3000:])
        assert sum(line.startswith(f"{prog}: error:") for line in lines) == 1, (case, proc.stderr[-3000:])
        assert "Traceback" not in proc.stderr + proc.stdout, (case, proc.stderr[-3000:])
        assert not marker.exists(), f"{case}: the payload ran"


def test_trust_pickle_is_the_way_out_and_a_config_cannot_take_it(files):
    """With --trust-pickle the same file is read by paddle.load, and its payload runs (so the refusals above
    are the loader's doing, not a dead payload); a config file setting the switch itself is refused."""
    path, marker = _hostile_weights(files, "trusted")
    yaml = files["folder"] / "trusting.yaml"
    yaml.write_text(files["config"].read_text().replace("pretrained: ''", "pretrained: ''\n    trust_pickle: true")
                    .replace('pretrained: ""', 'pretrained: ""\n    trust_pickle: true'))
    assert "trust_pickle: true" in yaml.read_text()
    results = _run_all({
        "trusted": ["main.py", "--test", "-c", str(files["config"]), "-w", str(path), "--trust-pickle",
                    "--output_dir", str(files["folder"] / "o_trusted")],
        "config": ["main.py", "--test", "-c", str(yaml), "-w", str(files["folder"] / "real.pdparams")]})
    assert marker.exists()
    assert results["trusted"].returncode == 1  # cls_token is now os.system's return value: not a tensor
    proc = results["config"]
    assert proc.returncode == 1 and "trust_pickle" in proc.stderr.splitlines()[-1], proc.stderr[-2000:]
    assert "set by the engine, not by the config" in proc.stderr.splitlines()[-1]


def test_build_model_with_weights_refuses_and_trusts_on_request(files, tmp_path):
    from paddlevideo.modeling.builder import build_model_with_weights
    from paddlevideo.config import get_config
    from paddlevideo.common.save_load import UnsafePickleError

    cfg = get_config(str(files["config"]), [], show=False)
    marker = tmp_path / "marker"
    state = dict(files["state"], **{"backbone.cls_token": hf.Call(os.system, f"touch '{marker}'")})
    path = hf.write(tmp_path / "x.pdparams", state)
    with pytest.raises(UnsafePickleError, match="it asks to call os.system"):
        build_model_with_weights(cfg.MODEL, str(path))
    assert not marker.exists()
    model = build_model_with_weights(cfg.MODEL, str(files["folder"] / "real.pdparams"))
    assert model.state_dict().keys() == files["state"].keys()
    for key, value in model.state_dict().items():
        assert np.array_equal(value.numpy(), files["state"][key]), key
