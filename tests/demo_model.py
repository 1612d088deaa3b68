"""The demo model trained by the README recipe, once per test session, for slow tests that need a trained model.

The session fixture ``demo_recipe`` (``tests/conftest.py``) calls :func:`train_demo_recipe`; tests ask for it
by name::

    @pytest.mark.slow
    def test_something(demo_recipe):
        demo_recipe.weights, demo_recipe.config, demo_recipe.data_dir, demo_recipe.overrides, demo_recipe.output_dir

The recipe runs as a user types it (``tools/make_demo_data.py``, then ``main.py --validate``), in
subprocesses, into the session's temporary folder; every test of the session shares that one training (its
``training_records.jsonl`` holds the validation top-1 of every epoch; a marker file records a finished run).
"""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"
MODEL_NAME = "TimeSformer_demo"
NUM_TRAIN, NUM_VAL, DATA_SEED, TRAIN_SEED = 2000, 200, 0, 1234  # the README recipe
TIMEOUT = 1800  # seconds per step: fails instead of hanging


def recipe_overrides(data_dir, out_dir):
    """The ``-o`` overrides that point the demo config at ``data_dir`` and ``out_dir`` (as tools/demo.py does)."""
    overrides = []
    for mode, name in (("train", "train"), ("valid", "val"), ("test", "val")):
        overrides += [f"DATASET.{mode}.data_prefix={data_dir}", f"DATASET.{mode}.file_path={data_dir}/{name}.list"]
    return overrides + [f"output_dir={out_dir}"]


def _run(cmd, log):
    with open(log, "w") as out:
        code = subprocess.call(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    if code != 0:
        tail = Path(log).read_text()[-2000:]
        raise AssertionError(f"{' '.join(map(str, cmd))} failed with exit code {code}:\n{tail}")


def train_demo_recipe(root):
    """Make the demo data and train the README recipe under ``root`` (skipped if a finished run is there)."""
    root = Path(root)
    data_dir, out_dir = root / "data", root / "output"
    done = root / "finished"
    result = SimpleNamespace(root=root, data_dir=data_dir, output_dir=out_dir, config=DEMO_CONFIG,
                             overrides=recipe_overrides(data_dir, out_dir),
                             weights=out_dir / f"{MODEL_NAME}_best.pdparams")
    if done.is_file():
        return result
    root.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "tools/make_demo_data.py", "--output", str(data_dir), "--num_train", str(NUM_TRAIN),
          "--num_val", str(NUM_VAL), "--seed", str(DATA_SEED)], root / "make_demo_data.log")
    _run([sys.executable, "main.py", "-c", str(DEMO_CONFIG), "--validate", "--seed", str(TRAIN_SEED),
          "-o", *result.overrides], root / "train.log")
    assert result.weights.is_file(), f"training finished without {result.weights}"
    done.write_text("ok\n")
    return result
