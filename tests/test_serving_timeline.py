"""POST /timeline as a job over real HTTP (issue 24): the windows arrive while the job runs, and the finished
timeline equals paddlevideo.deploy.timeline.predict_timeline run here on the same file, model and settings."""

import time

import numpy as np
import pytest

from serving_helpers import ServerProcess, export_tiny, post_video, request

pytest.importorskip("paddlevideo.deploy.timeline", reason="needs paddlevideo.deploy.timeline (issue 22)")

SETTINGS = {"window_s": 1.0, "stride_s": 0.5, "top_k": 3}


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    from paddlevideo.loader.demo_data import make_long_video

    path = tmp_path_factory.mktemp("long") / "demo_long.avi"
    make_long_video(str(path), num_segments=6, seed=0, min_s=1.0, max_s=2.0)
    return path


@pytest.fixture(scope="module")
def timeline_service(tmp_path_factory):
    model = export_tiny(tmp_path_factory.mktemp("timeline_model"))
    service = ServerProcess(model, tmp_path_factory.mktemp("timeline_serve") / "tmp", "--max_batch", 4)
    yield service, model
    service.kill()


def wait_job(url, job, timeout=120):
    """Poll the job as the page does (``since``), collecting its windows; returns (last view, windows, polls)."""
    windows, polls, deadline = [], [], time.monotonic() + timeout
    while True:
        view = request(url, path=f"/jobs/{job}?since={len(windows)}").json
        assert view["since"] == len(windows)
        windows += view["items"]
        polls.append((view["state"], len(windows), view["progress"]))
        if view["state"] not in ("queued", "running"):
            return view, windows, polls
        assert time.monotonic() < deadline, f"job {job} did not finish in {timeout} s: {view}"
        time.sleep(0.05)


def test_timeline_job_equals_predict_timeline(timeline_service, long_video):
    from paddlevideo.deploy.backends.paddle_inference import PaddlePredictor
    from paddlevideo.deploy.timeline import TimelineSettings, predict_timeline
    from paddlevideo.loader.labels import load_label_names
    from paddlevideo.config import get_config

    service, model = timeline_service
    query = "?" + "&".join(f"{k}={v}" for k, v in SETTINGS.items())
    started = post_video(service.url, long_video.read_bytes(), long_video.name, route="/timeline", query=query)
    assert started.status == 202, started.json
    assert started.headers["location"] == started.json["url"] == f"/jobs/{started.json['job']}"
    view, windows, polls = wait_job(service.url, started.json["job"])
    assert view["state"] == "done" and view["error"] is None, view
    assert view["progress"]["done"] == view["progress"]["total"] == len(windows) > 10
    assert any(state == "running" and 0 < n < len(windows) for state, n, _ in polls) or len(polls) == 1

    cfg = get_config(model.config, [], show=False)
    reference = predict_timeline(str(long_video), cfg, PaddlePredictor(model.model, model.params),
                                 settings=TimelineSettings(batch_size=4, **SETTINGS),
                                 label_names=load_label_names(model.labels))
    assert len(windows) == len(reference.windows)
    for got, want in zip(windows, reference.windows):
        assert got["class_ids"] == want["class_ids"] and got["class_names"] == want["class_names"]
        assert got["start_s"] == pytest.approx(want["start_s"]) and got["end_s"] == pytest.approx(want["end_s"])
        np.testing.assert_allclose(got["scores"], want["scores"], rtol=0, atol=1e-5)
    result = view["result"]
    assert result["source"] == long_video.name and result["complete"] is True
    assert [s["class_id"] for s in result["segments"]] == [s["class_id"] for s in reference.segments]
    assert result["settings"]["window_s"] == 1.0 and result["settings"]["stride_s"] == 0.5
    assert service.leftovers() == []  # the job's copy of the upload is gone


def test_timeline_bad_requests(timeline_service, long_video):
    service, _ = timeline_service
    for query in ("?window_s=-1", "?smooth=0", "?top_k=abc", "?cuts=sometimes"):
        reply = post_video(service.url, long_video.read_bytes(), long_video.name, route="/timeline", query=query)
        assert reply.status == 400 and set(reply.json) == {"error"}, (query, reply.json)
    reply = post_video(service.url, b"not a video at all\n" * 40, "notes.avi", route="/timeline")
    assert reply.status == 202
    view, windows, _ = wait_job(service.url, reply.json["job"])
    assert view["state"] == "failed" and "notes.avi" in view["error"] and windows == []
    assert "upload-" not in view["error"] and str(service.tmpdir) not in view["error"]
    assert request(service.url, path="/jobs/0123abcd").status == 404
    assert service.leftovers() == []


def test_timeline_job_can_be_cancelled(timeline_service, long_video):
    service, _ = timeline_service
    started = post_video(service.url, long_video.read_bytes(), long_video.name, route="/timeline",
                         query="?window_s=0.5&stride_s=0.1")
    assert started.status == 202
    job = started.json["job"]
    cancelled = request(service.url, "DELETE", f"/jobs/{job}")
    assert cancelled.status == 200
    view, windows, _ = wait_job(service.url, job)
    assert view["state"] in ("cancelled", "done")  # a very fast machine may finish first
    if view["state"] == "cancelled":
        assert len(windows) < 100
    assert service.leftovers() == []
