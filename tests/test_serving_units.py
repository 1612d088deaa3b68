"""The service's parts without HTTP (issue 24): dynamic batching and its bounded queue, the per-request timeout
and clean-up, jobs, result files, the API key check. The model is a numpy function (its answers are checked
against the same function per clip); where a test needs a slow model, the function waits on an event."""

import asyncio
import os
import threading
import time

import numpy as np
import pytest

from paddlevideo.serving.batching import ModelWorker, QueuedPredictor
from paddlevideo.serving.errors import Unavailable
from paddlevideo.common.errors import InputError

CLIP = (3, 4, 2, 2)
WEIGHTS = np.random.RandomState(0).normal(size=(int(np.prod(CLIP)), 5)).astype(np.float32)


def linear_model(imgs):
    """logits [N, 5] = the first 48 values of each clip @ WEIGHTS: each row depends only on its own clip."""
    return imgs.reshape(len(imgs), -1)[:, :WEIGHTS.shape[0]] @ WEIGHTS


class GatedModel:
    """``linear_model`` that waits for ``gate`` on each call and records the batches it ran."""

    def __init__(self):
        self.gate, self.batches, self.entered = threading.Event(), [], threading.Event()

    def __call__(self, imgs):
        self.entered.set()
        assert self.gate.wait(30), "test gate never opened"
        self.batches.append(imgs.copy())
        return linear_model(imgs)


def clips(n, seed=1, shape=CLIP):
    return np.random.RandomState(seed).uniform(-1, 1, (n, *shape)).astype(np.float32)


def start_worker(model, **kw):
    sizes = []
    settings = dict(max_batch=4, max_wait_s=0.2, capacity=16, on_batch=lambda size, s: sizes.append(size))
    settings.update(kw)
    worker = ModelWorker(lambda: model, **settings).start()
    assert worker.ready.wait(10) and worker.failure is None
    return worker, sizes


def test_concurrent_clips_are_batched_and_each_gets_its_own_answer():
    worker, sizes = start_worker(linear_model)
    data = clips(10)
    barrier = threading.Barrier(10)

    def one(i):
        barrier.wait()
        return worker.submit(data[i]).result(10)

    threads, results = [], [None] * 10
    for i in range(10):
        threads.append(threading.Thread(target=lambda i=i: results.__setitem__(i, one(i))))
        threads[-1].start()
    for thread in threads:
        thread.join(20)
    worker.close()
    for i, result in enumerate(results):
        np.testing.assert_allclose(result.logits, linear_model(data[i:i + 1])[0], rtol=1e-5, atol=1e-5)
    assert sum(sizes) == 10 and max(sizes) <= 4
    assert max(sizes) > 1  # ten clips within 0.2 s of each other share model calls
    assert sorted(r.batch_size for r in results) == sorted(s for s in sizes for _ in range(s))


def test_a_lone_clip_waits_at_most_max_wait():
    worker, sizes = start_worker(linear_model, max_wait_s=0.3)
    start = time.monotonic()
    result = worker.submit(clips(1)[0]).result(10)
    waited = time.monotonic() - start
    assert 0.29 <= result.queued and waited < 3.0 and sizes == [1]
    worker.close()
    fast, _ = start_worker(linear_model, max_wait_s=0.0)
    assert fast.submit(clips(1)[0]).result(10).queued < 0.25
    fast.close()


def test_full_queue_is_refused_with_retry_after_then_recovers():
    model = GatedModel()
    worker, _ = start_worker(model, capacity=2, max_batch=1, max_wait_s=0.0)
    data = clips(4)
    running = worker.submit(data[0])
    assert model.entered.wait(10)  # in the model, blocked
    waiting = [worker.submit(data[1]), worker.submit(data[2])]
    with pytest.raises(Unavailable) as refused:
        worker.submit(data[3])
    assert refused.value.status == 503 and int(refused.value.headers["Retry-After"]) >= 1
    model.gate.set()
    for i, future in enumerate([running, *waiting]):
        np.testing.assert_allclose(future.result(10).logits, linear_model(data[i:i + 1])[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(worker.submit(data[3]).result(10).logits, linear_model(data[3:4])[0], rtol=1e-5, atol=1e-5)
    worker.close()


def test_cancelled_clips_never_reach_the_model_and_shapes_are_not_mixed():
    model = GatedModel()
    worker, _ = start_worker(model, max_batch=4, max_wait_s=0.05)
    first = worker.submit(clips(1, seed=5)[0])
    assert model.entered.wait(10)
    gone = worker.submit(clips(1, seed=6)[0])
    other = worker.submit(clips(1, seed=7, shape=(3, 8, 2, 2))[0])
    kept = worker.submit(clips(1, seed=8)[0])
    assert gone.cancel()  # a request that timed out while waiting
    model.gate.set()
    first.result(10), other.result(10), kept.result(10)
    worker.close()
    ran = np.concatenate([b.reshape(len(b), -1)[:, :48] for b in model.batches])
    assert not any(np.array_equal(row, clips(1, seed=6)[0].reshape(-1)) for row in ran)
    assert all(len({clip.shape for clip in batch}) == 1 for batch in model.batches)
    assert [b.shape[2] for b in model.batches].count(8) == 1


def test_a_failing_model_call_fails_its_clips_only():
    calls = []

    def flaky(imgs):
        calls.append(len(imgs))
        if len(calls) == 1:
            raise RuntimeError("out of memory in the runtime")
        return linear_model(imgs)

    worker, _ = start_worker(flaky, max_wait_s=0.0)
    with pytest.raises(RuntimeError, match="out of memory"):
        worker.submit(clips(1)[0]).result(10)
    assert worker.submit(clips(1)[0]).result(10).logits.shape == (5,)
    worker.close()


def test_a_model_that_cannot_load_stops_the_service():
    fatal = []

    def load():
        raise InputError("model 'x.pdmodel' not found")

    worker = ModelWorker(load, 4, 0.0, 4, on_fatal=fatal.append).start()
    assert worker.ready.wait(10)
    assert isinstance(worker.failure, InputError) and fatal == [worker.failure]
    with pytest.raises(Unavailable, match="x.pdmodel"):
        worker.submit(clips(1)[0])


def test_close_answers_what_was_queued_and_refuses_the_rest():
    model = GatedModel()
    worker, _ = start_worker(model, max_batch=2, max_wait_s=0.0)
    data = clips(5)
    futures = [worker.submit(clip) for clip in data]
    assert model.entered.wait(10)
    closer = threading.Thread(target=worker.close)
    closer.start()
    model.gate.set()
    closer.join(20)
    for i, future in enumerate(futures):
        np.testing.assert_allclose(future.result(1).logits, linear_model(data[i:i + 1])[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(Unavailable, match="stopping"):
        worker.submit(data[0])


def test_queued_predictor_gives_each_window_its_row():
    worker, sizes = start_worker(linear_model, max_batch=3, max_wait_s=0.05)
    data = clips(7)
    logits = QueuedPredictor(worker)(data)
    np.testing.assert_allclose(logits, linear_model(data), rtol=1e-5, atol=1e-5)
    assert sum(sizes) == 7 and max(sizes) <= 3
    stop = threading.Event()
    stop.set()
    gated = GatedModel()
    slow, _ = start_worker(gated, max_wait_s=0.0)
    with pytest.raises(Unavailable, match="stopped"):
        QueuedPredictor(slow, should_stop=stop.is_set)(data[:2])
    gated.gate.set()
    worker.close(), slow.close()


# ------------------------------------------------------------------ one request: timeout and clean-up


def test_timeout_gives_504_and_the_upload_and_slot_are_released_when_the_work_ends(tiny_cfg, tmp_path):
    """A real test pipeline and a model that is busy: the request times out (504) at once, but its slot and its
    upload are held until the model call it was part of has ended, then released."""
    import cv2

    from paddlevideo.deploy.export import export_input_shape
    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.serving.clips import ClipService
    from paddlevideo.serving.settings import ServeSettings
    from paddlevideo.serving.uploads import Upload

    path = tmp_path / "upload-1.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(16):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    video = path.read_bytes()
    pipeline = build_pipeline(tiny_cfg.PIPELINE.test)
    shape = export_input_shape(tiny_cfg)
    # small weights: logits of a few units, so the top-3 probabilities are well apart in float32
    weights = np.random.RandomState(0).normal(0, 0.005, size=(int(np.prod(shape[1:])), 10)).astype(np.float32)
    gate, entered = threading.Event(), threading.Event()

    def slow_model(imgs):
        entered.set()
        gate.wait(30)
        return imgs.reshape(len(imgs), -1) @ weights

    settings = ServeSettings(config="x", model_file="y", timeout_s=0.5, max_wait_ms=0, queue_size=1)
    service = ClipService(settings, tiny_cfg, pipeline, None, lambda: slow_model,
                          shape).start()
    gate.set()  # the warm-up runs through
    assert service.worker.ready.wait(30)
    deadline = time.monotonic() + 10
    while not service.ready:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gate.clear()
    entered.clear()

    async def one(upload):
        ticket = service.admit()
        ticket.cleanups.append(upload.remove)
        try:
            return await service.predict(ticket, upload, time.monotonic(), 3)
        finally:
            ticket.close()

    upload = Upload(str(path), "clip.avi", path.stat().st_size)
    with pytest.raises(Unavailable) as timed_out:
        asyncio.run(one(upload))
    assert timed_out.value.status == 504 and "--timeout_s" in str(timed_out.value)
    assert entered.is_set()  # the clip is in the model call, which cannot be interrupted
    assert path.exists() and service.in_flight == 1
    with pytest.raises(Unavailable) as busy:  # its slot is still taken (queue_size 1)
        service.admit()
    assert busy.value.status == 503
    gate.set()
    deadline = time.monotonic() + 10
    while path.exists() or service.in_flight:
        assert time.monotonic() < deadline, "the upload or the slot was never released"
        time.sleep(0.01)
    # the next request is answered: the model's top-3 softmax of the pipeline's clip, computed here in numpy
    path.write_bytes(video)
    logits = pipeline({"filename": str(path)})["imgs"].reshape(1, -1).astype(np.float64) @ weights
    answer = asyncio.run(one(Upload(str(path), "again.avi", len(video))))
    probs = np.exp(logits[0] - logits.max()) / np.exp(logits[0] - logits.max()).sum()
    assert answer["class_ids"] == list(np.argsort(-probs)[:3])
    np.testing.assert_allclose(answer["scores"], np.sort(probs)[::-1][:3], rtol=1e-4)
    assert not path.exists() and service.in_flight == 0
    service.close()


# ------------------------------------------------------------------ jobs, results, keys


def test_jobs_publish_progress_are_bounded_and_can_be_cancelled():
    from paddlevideo.serving.jobs import JobManager

    manager = JobManager(max_running=1, max_kept=2, ttl_s=60)
    release = threading.Event()
    cleaned = []

    def work(job):
        for i in range(3):
            job.progress(done=i + 1, total=3, item={"window": i})
        release.wait(10)
        return {"windows": 3}

    first = manager.submit("timeline", "a.mp4", work, cleanup=lambda: cleaned.append("a"))
    second = manager.submit("timeline", "b.mp4", work, cleanup=lambda: cleaned.append("b"))
    with pytest.raises(Unavailable):  # one runs, one waits: a third is refused
        manager.submit("timeline", "c.mp4", work, cleanup=lambda: cleaned.append("c"))
    assert cleaned == ["c"]
    deadline = time.monotonic() + 10
    while first.snapshot()["progress"]["done"] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    view = first.snapshot(since=1)
    assert view["state"] == "running" and view["items"] == [{"window": 1}, {"window": 2}]
    assert view["progress"] == {"done": 3, "total": 3, "fraction": 1.0}
    second.cancel()
    release.set()
    while second.snapshot()["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert first.snapshot()["state"] == "done" and first.snapshot()["result"] == {"windows": 3}
    assert second.snapshot()["state"] == "cancelled"
    assert sorted(cleaned) == ["a", "b", "c"]
    manager.close()


def test_result_files_only_by_token_and_name(tmp_path):
    from paddlevideo.serving.results import ResultStore

    store = ResultStore(str(tmp_path / "results"), keep=2)
    tokens = []
    for _ in range(3):
        token, folder = store.new()
        open(os.path.join(folder, "attention.gif"), "wb").close()
        tokens.append(token)
    assert store.path(tokens[0], "attention.gif") is None and not os.path.exists(tmp_path / "results" / tokens[0])
    assert store.path(tokens[2], "attention.gif").endswith("attention.gif")
    for token, name in ((tokens[2], "../x"), ("../../etc", "passwd"), (tokens[2], "attention.json"),
                        (tokens[2].upper(), "attention.gif")):
        assert store.path(token, name) is None


def test_api_key_forms():
    import base64

    from paddlevideo.serving.app import key_matches

    key = "k3y"
    basic = lambda user, pw: "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()  # noqa: E731
    assert key_matches({"x-api-key": key}, key)
    assert key_matches({"authorization": f"Bearer {key}"}, key)
    assert key_matches({"authorization": basic("me", key)}, key)
    for headers in ({}, {"x-api-key": "k3"}, {"authorization": f"Bearer {key}x"}, {"authorization": basic(key, "")},
                    {"authorization": "Basic !!!"}, {"authorization": key}):
        assert not key_matches(headers, key), headers


# ------------------------------------------------------------------ uploads: slow, endless and vanishing clients


def upload_request(chunks, headers=None, then="wait"):
    """A starlette ``Request`` whose body is ``chunks`` (more to come after each), then ``then``: ``wait`` (the
    client sends nothing more) or ``disconnect``."""
    from starlette.requests import Request

    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n\r\n").encode()
    messages = [{"type": "http.request", "body": head, "more_body": True}]
    messages += [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]

    async def receive():
        if messages:
            return messages.pop(0)
        if then == "disconnect":
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()  # a client that stopped sending

    raw = {"content-type": f"multipart/form-data; boundary={boundary}", **(headers or {})}
    scope = {"type": "http", "method": "POST", "path": "/predict", "query_string": b"",
             "headers": [(k.encode(), v.encode()) for k, v in raw.items()]}
    return Request(scope, receive)


def test_uploads_that_stall_overflow_or_vanish_leave_no_file(tmp_path):
    from paddlevideo.serving.errors import ClientError
    from paddlevideo.serving.uploads import receive_upload

    folder = tmp_path / "uploads"
    folder.mkdir()
    cases = {408: upload_request([b"x" * 1000]),  # stalls after 1 kB
             413: upload_request([b"x" * 4096] * 300, then="disconnect"),  # 1.2 MB, no Content-Length
             400: upload_request([b"x" * 1000], then="disconnect")}  # goes away mid-upload
    for status, request in cases.items():
        start = time.monotonic()
        with pytest.raises(ClientError) as refused:
            asyncio.run(receive_upload(request, str(folder), max_bytes=2**20, timeout_s=0.5))
        assert refused.value.status == status, refused.value
        assert time.monotonic() - start < 5
        assert list(folder.iterdir()) == []


def test_an_address_in_use_is_one_line_naming_it():
    import socket

    from paddlevideo.serving.server import bind
    from paddlevideo.common.errors import ConfigError

    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"--port {port}.*in use"):
            bind("127.0.0.1", port)
    finally:
        taken.close()
    assert isinstance(taken, socket.socket)
