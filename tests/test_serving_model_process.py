"""The service's model in a child process of its own (``--model_process``, paddlevideo/serving/model_process.py):
Paddle Inference keeps Python's GIL during a model call, so the service runs it in a spawned child. Its answers
must be the in-process predictor's, batch after batch of any size; a batch it refuses fails alone; the child
ignores the signals a process group gets; a child that dies stops the service with one line."""

import os
import signal
import time

import numpy as np
import pytest

from paddlevideo.serving.batching import ModelWorker
from paddlevideo.serving.errors import Unavailable
from paddlevideo.serving.model_process import (HOLDS_GIL, PROBE_BELOW_S, ModelCallError,
                                               ModelProcess, ModelProcessError, fewer_threads_win,
                                               start_model_process, use_model_process)
from paddlevideo.serving.settings import ServeSettings
from paddlevideo.common.errors import ConfigError, InputError
from serving_helpers import ServerProcess, export_tiny, post_video, write_noise_avi


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return export_tiny(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="module")
def clip_shape(tiny_model):
    from paddlevideo.config import get_config
    from paddlevideo.deploy.model_input import pipeline_input_shape

    return [int(d) for d in pipeline_input_shape(get_config(tiny_model.config, [], show=False))[1:]]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_auto_runs_only_the_runtimes_that_hold_the_gil_in_a_process():
    assert HOLDS_GIL == ("paddle",)
    assert use_model_process("auto", "paddle")
    assert not use_model_process("auto", "openvino") and not use_model_process("auto", "onnxruntime")
    assert use_model_process("on", "openvino") and not use_model_process("off", "paddle")
    with pytest.raises(ValueError, match="auto, on, off"):
        use_model_process("yes", "paddle")


def test_one_core_fewer_only_for_a_fast_model_that_does_as_much_per_core():
    assert fewer_threads_win(0.0025, 0.0024, 2) and fewer_threads_win(0.00144, 0.00216, 2)  # the demo model
    assert fewer_threads_win(0.004, 0.008, 2) and not fewer_threads_win(0.004, 0.0081, 2)  # 2 cores: up to 2x
    assert fewer_threads_win(0.003, 0.004, 4) and not fewer_threads_win(0.003, 0.0041, 4)  # 4 cores: up to 4/3
    assert not fewer_threads_win(PROBE_BELOW_S, PROBE_BELOW_S / 2, 2)  # slow models (ViT-B) are never probed
    assert not fewer_threads_win(2.0, 1.0, 2)


def test_threads_given_or_probed(tiny_model, clip_shape):
    """--cpu_threads N: one process with N threads, no probe. Without it (2 cores here): the model on every
    core is timed, then on one fewer; the process that serves is one of the two and says which."""
    lines = []
    given = start_model_process(tiny_model.model, "paddle", params_file=tiny_model.params, cpu_threads=1,
                                probe_shape=[2, *clip_shape], cores=2, log=lines.append)
    try:
        assert given.cpu_threads == 1 and lines == []
    finally:
        given.close()
    chosen = start_model_process(tiny_model.model, "paddle", params_file=tiny_model.params,
                                 probe_shape=[2, *clip_shape], cores=2, log=lines.append)
    try:
        assert len(lines) == 1 and lines[0].startswith("model threads: "), lines
        if chosen.cpu_threads == 1:
            assert lines[0].startswith("model threads: 1 of 2 cores") and "decodes uploads" in lines[0]
        else:
            assert chosen.cpu_threads is None and lines[0].startswith("model threads: 2 of 2 cores")
        assert chosen(np.zeros([1, *clip_shape], np.float32)).shape[0] == 1
    finally:
        chosen.close()
    alone = start_model_process(tiny_model.model, "paddle", params_file=tiny_model.params,
                                probe_shape=None, cores=2, log=lines.append)  # a clip shape that depends on the video
    try:
        assert alone.cpu_threads is None and len(lines) == 1
    finally:
        alone.close()


def test_settings_refuse_an_unknown_mode(tiny_model):
    settings = ServeSettings(config=tiny_model.config, model_file=tiny_model.model, model_process="always")
    with pytest.raises(ConfigError, match="--model_process must be one of auto, on, off"):
        settings.check()


def test_answers_equal_the_in_process_predictor_and_a_refused_batch_fails_alone(tiny_model, clip_shape):
    from paddlevideo.deploy.predictor import build_predictor

    local = build_predictor(tiny_model.model, "paddle", params_file=tiny_model.params)
    remote = ModelProcess(tiny_model.model, "paddle", params_file=tiny_model.params)
    pid = remote.pid
    try:
        assert pid != os.getpid() and alive(pid)
        assert "in model process" in remote.describe() and remote.backend == "paddle" and remote.precision == "fp32"
        rng = np.random.RandomState(0)
        for size in (1, 4, 2, 3, 1):  # the shared buffer grows for 4 and is reused for the smaller batches
            imgs = rng.uniform(-2, 2, [size, *clip_shape]).astype(np.float32)
            np.testing.assert_array_equal(remote(imgs), local(imgs))
        with pytest.raises(ModelCallError):  # a clip the model cannot take: this call fails, the child goes on
            remote(np.zeros([1, 3, 5, 7, 9], np.float32))
        imgs = rng.uniform(-2, 2, [2, *clip_shape]).astype(np.float32)
        np.testing.assert_array_equal(remote(imgs), local(imgs))
    finally:
        remote.close()
    remote.close()  # again is fine
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_a_model_that_cannot_load_is_one_line_and_leaves_no_process(tmp_path):
    missing = tmp_path / "missing.pdmodel"
    missing.write_bytes(b"not a program")
    with pytest.raises(InputError) as err:
        ModelProcess(str(missing), "paddle")
    assert "\n" not in str(err.value) and "missing" in str(err.value)


def test_the_child_ignores_group_signals_and_its_death_is_fatal(tiny_model, clip_shape):
    remote = ModelProcess(tiny_model.model, "paddle", params_file=tiny_model.params)
    imgs = np.zeros([1, *clip_shape], np.float32)
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):  # what Ctrl-C or a service manager sends to the group
            os.kill(remote.pid, signum)
        time.sleep(0.5)
        assert remote(imgs).shape[0] == 1
        os.kill(remote.pid, signal.SIGKILL)
        with pytest.raises(ModelProcessError, match="model process ended") as err:
            remote(imgs)
        assert err.value.fatal
    finally:
        remote.close()


def test_a_fatal_model_error_stops_the_worker():
    """A model call that raises an error marked ``fatal`` (the model process died) fails its clips with 503 and
    stops the model thread (the service ends), where another error fails only its batch."""

    class Dead(RuntimeError):
        fatal = True

    def model(imgs):
        raise Dead("the model process ended with exit code -9")

    closed, fatal = [], []

    class Predictor:
        def __call__(self, imgs):
            return model(imgs)

        def close(self):
            closed.append(True)

    worker = ModelWorker(Predictor, 4, 0.0, 8, on_fatal=fatal.append).start()
    assert worker.ready.wait(10)
    with pytest.raises(Unavailable, match="exit code -9"):
        worker.submit(np.zeros([3, 2, 2, 2], np.float32)).result(10)
    deadline = time.monotonic() + 10
    while not fatal and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(fatal) == 1 and isinstance(worker.failure, Dead)
    with pytest.raises(Unavailable, match="model failed"):
        worker.submit(np.zeros([3, 2, 2, 2], np.float32))
    worker.close()
    assert closed == [True]  # the predictor's own resources are released with the thread


def test_service_runs_paddle_in_a_child_and_stops_when_it_dies(tiny_model, tmp_path):
    """tools/serve.py: the model loads in a child process (its log line says so) and answers; killing that
    child ends the service with one error line and exit code 1, instead of a service that answers 500s."""
    video = write_noise_avi(tmp_path / "noise.avi").read_bytes()
    service = ServerProcess(tiny_model, tmp_path / "tmp")
    try:
        line = next(line for line in service.stderr().splitlines() if "model loaded:" in line)
        child = int(line.rsplit("in model process ", 1)[1].rstrip(")"))
        assert child != service.pid and alive(child)
        assert post_video(service.url, video, "noise.avi").status == 200
        os.kill(child, signal.SIGKILL)
        reply = post_video(service.url, video, "noise.avi")
        assert reply.status == 503 and "model process ended" in reply.json["error"]
        assert service.stop(sig=None, timeout=60) == 1
        last = service.stderr().strip().splitlines()[-1]
        assert last.startswith("serve.py: error: ") and "model process ended" in last
        assert "Traceback" not in service.stderr()
    finally:
        service.kill()
    assert service.leftovers() == []
