"""The demo model trained by the README recipe, once per test session, for slow tests that need a trained model,
and its space_only control (the same recipe, blind to frame order).

The session fixtures ``demo_recipe`` and ``demo_space_only`` (``tests/conftest.py``) share one :class:`DemoRuns`;
tests ask for them by name::

    @pytest.mark.slow
    def test_something(demo_recipe):
        demo_recipe.weights, demo_recipe.config, demo_recipe.data_dir, demo_recipe.overrides, demo_recipe.output_dir

The recipe runs as a user types it (``tools/make_demo_data.py``, then ``main.py --validate``), in
subprocesses, into the session's temporary folder; every test of the session shares that one training (its
``training_records.jsonl`` holds the validation top-1 of every epoch).
Under pytest-xdist every worker is its own process with its own session fixtures, and the tests that need a
trained model may run on any of them (pytest 9.2 ignores xdist's ``loadgroup`` grouping: it renamed the node
id attribute that xdist rewrites). So the trainings live in the folder all workers of the session share, behind
a file lock: the first worker to ask trains while the others wait for the lock, then read the finished files
(each run writes a ``<name>.done`` marker once it finished). One training per session, whatever the schedule.

When the session also asks for the space_only control, it trains at the same time as the recipe, in its own
process with one BLAS thread (each run is seeded and alone in its process, so its results do not depend on the
other). On 2 cores the pair takes a little less wall time than the two runs one after the other, not half:
the tiny model's steps are short and both runs compete for the same cores.
"""

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"
MODEL_NAME = "TimeSformer_demo"
NUM_TRAIN, NUM_VAL, DATA_SEED, TRAIN_SEED = 2000, 200, 0, 1234  # the README recipe
TIMEOUT = 1800  # seconds per step: fails instead of hanging
EPOCHS = 16  # the recipe's (configs/recognition/timesformer/timesformer_demo_videos.yaml)
SPACE_ONLY = ["MODEL.backbone.attention_type=space_only", "log_interval=50"]


def recipe_overrides(data_dir, out_dir):
    """The ``-o`` overrides that point the demo config at ``data_dir`` and ``out_dir`` (as tools/demo.py does)."""
    overrides = []
    for mode, name in (("train", "train"), ("valid", "val"), ("test", "val")):
        overrides += [f"DATASET.{mode}.data_prefix={data_dir}", f"DATASET.{mode}.file_path={data_dir}/{name}.list"]
    return overrides + [f"output_dir={out_dir}"]


def _start(cmd, log, env=None):
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)


def _finish(proc, cmd, log):
    """Wait for ``proc`` (at most TIMEOUT seconds: a hang fails instead of stalling the session)."""
    try:
        code = proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{' '.join(map(str, cmd))} did not finish within {TIMEOUT} s") from None
    if code != 0:
        tail = Path(log).read_text()[-2000:]
        raise AssertionError(f"{' '.join(map(str, cmd))} failed with exit code {code}:\n{tail}")


def _run(cmd, log, env=None):
    _finish(_start(cmd, log, env), cmd, log)


class DemoRuns:
    """The README recipe (``"recipe"``, divided space-time) and its space_only control (``"space_only"``),
    trained under ``root`` on one generated dataset. The first request starts every run in ``expected`` (the
    ones the session will ask for) at once; :meth:`recipe` / :meth:`space_only` wait for theirs.
    :meth:`close` stops whatever still runs."""

    def __init__(self, root, expected=("recipe", "space_only")):
        self.root, self.expected = Path(root), set(expected)
        self.data_dir = self.root / "data"
        self._procs = {}  # name -> (process, command, log)
        self._results = {}

    def recipe(self):
        """The README recipe: ``SimpleNamespace`` of ``data_dir``, ``output_dir``, ``config``, ``overrides``,
        ``weights`` (the best epoch's)."""
        return self._result("recipe")

    def space_only(self):
        """The same recipe with ``MODEL.backbone.attention_type=space_only`` (same data, same seed); the
        namespace also has ``epochs`` and ``last_weights`` (the last epoch's)."""
        return self._result("space_only")

    def close(self):
        for proc, _, _ in self._procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def _result(self, name):
        if name not in self._results:
            if not self._done(name).is_file():
                with self._exclusive():  # another worker of the session may be training: wait for it
                    if not self._done(name).is_file():
                        self._start_runs(name)
                        # every run started here finishes before the lock is released, so a worker that waits
                        # for another run finds it done instead of starting it a second time
                        for started, (proc, cmd, log) in list(self._procs.items()):
                            _finish(proc, cmd, log)
                            self._done(started).write_text("finished\n")
            result = self._namespace(name)
            assert result.weights.is_file(), f"training finished without {result.weights}"
            self._results[name] = result
        return self._results[name]

    def _done(self, name):
        return self.root / f"{name}.done"

    @contextlib.contextmanager
    def _exclusive(self):
        """Hold the session's training lock (``root/train.lock``); waits at most TIMEOUT x 3 seconds for a
        worker that holds it (data + two trainings), then fails instead of hanging."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "train.lock", "w") as lock:
            deadline = time.monotonic() + 3 * TIMEOUT
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"another worker held {self.root / 'train.lock'} for over "
                                             f"{3 * TIMEOUT} s") from None
                    time.sleep(1.0)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _namespace(self, name):
        out_dir = self.root / ("output" if name == "recipe" else "space_only")
        extra = [] if name == "recipe" else SPACE_ONLY
        return SimpleNamespace(root=self.root, data_dir=self.data_dir, output_dir=out_dir, config=DEMO_CONFIG,
                               overrides=recipe_overrides(self.data_dir, out_dir) + extra, epochs=EPOCHS,
                               weights=out_dir / f"{MODEL_NAME}_best.pdparams",
                               last_weights=out_dir / f"{MODEL_NAME}_epoch_{EPOCHS:05d}.pdparams")

    def _start_runs(self, wanted):
        if wanted in self._procs:
            return
        if not (self.data_dir / "val.list").is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            _run([sys.executable, "tools/make_demo_data.py", "--output", str(self.data_dir), "--num_train",
                  str(NUM_TRAIN), "--num_val", str(NUM_VAL), "--seed", str(DATA_SEED)], self.root / "make_demo_data.log")
        for name in sorted(self.expected | {wanted}):
            if name in self._procs:
                continue
            cmd = [sys.executable, "main.py", "-c", str(DEMO_CONFIG), "--validate", "--seed", str(TRAIN_SEED),
                   "-o", *self._namespace(name).overrides]
            # The recipe keeps the user's environment; the control runs beside it on one thread.
            env = None if name == "recipe" else dict(os.environ, OMP_NUM_THREADS="1")
            log = self.root / f"{name}.log"
            self._procs[name] = (_start(cmd, log, env), cmd, log)
