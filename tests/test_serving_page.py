"""The page at / in a real headless browser (issue 24): Debian's chromium driven by Playwright uploads a demo
clip, the page shows the clip playing, the top-k bars and the attention pictures, and the predicted class read
from the page is the service's answer for that file; a long demo video fills the timeline ribbon as its job
runs. Screenshots are saved as test artifacts (``$PADDLEVIDEO_TEST_ARTIFACTS`` or ``test-artifacts/`` in the
repository).

Skips, saying why, only where no browser can be had: no Playwright for Python, or no chromium binary
(``.ci/run`` installs Debian's ``chromium`` when it is missing; Playwright's own browser download is never used).
"""

import os
from pathlib import Path

import pytest

from serving_helpers import REPO, ServerProcess, export_tiny, post_video, request, write_demo_webm, write_long_demo_webm

CHROMIUM = os.environ.get("PADDLEVIDEO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("PADDLEVIDEO_TEST_ARTIFACTS", REPO / "test-artifacts"))
API_KEY = "page-test-key"


def browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install -r requirements-test.txt)")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does it)")
    return sync_playwright


@pytest.fixture(scope="module")
def page_service(tmp_path_factory):
    """The tiny model with its dygraph weights (attention pictures on) behind an API key."""
    browser_or_skip()
    model = export_tiny(tmp_path_factory.mktemp("page_model"))
    service = ServerProcess(model, tmp_path_factory.mktemp("page_serve") / "tmp", "-w", model.weights,
                            env={"PADDLEVIDEO_API_KEY": API_KEY})
    try:
        yield service, model
        assert service.stop() == 0 and service.leftovers() == []  # SIGTERM: exit 0, no temporary file left
    finally:
        service.kill()


def test_page_uploads_a_demo_clip_and_shows_the_answer(page_service, tmp_path):
    sync_playwright = browser_or_skip()
    service, model = page_service
    clip = write_demo_webm(tmp_path / "demo_right.webm", label=0)
    # what the API answers for the same file (tests/test_serving_api.py checks it against tools/predict.py)
    answer = post_video(service.url, clip.read_bytes(), clip.name, query="?top_k=5",
                        headers={"X-API-Key": API_KEY}).json
    assert answer["class_names"][0] in model.names

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "serving_page.png"
    console_errors = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1180, "height": 820}, http_credentials={"username": "me", "password": API_KEY})
        try:
            page = context.new_page()
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            outside = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(service.url) and
                    not r.url.startswith(("blob:", "data:")) else None)
            page.goto(service.url + "/")
            page.wait_for_selector("#service.ready", timeout=60_000)
            assert "TimeSformer.pdmodel" in page.inner_text("#service")
            assert page.is_checked("#want-attention")  # the service has -w: attention is offered
            page.set_input_files("#file", str(clip))
            top = page.wait_for_selector('.bar-row[data-rank="1"]', timeout=60_000)
            shown = page.inner_text('.bar-row[data-rank="1"] .name')
            assert shown == answer["class_names"][0]
            assert int(top.get_attribute("data-class-id")) == answer["class_ids"][0]
            assert page.locator(".bar-row").count() == 5
            first_score = page.inner_text('.bar-row[data-rank="1"] .score')
            assert first_score == f"{100 * answer['scores'][0]:.1f}%"
            # the clip plays in the page, and the attention pictures arrived
            page.wait_for_function("() => { const v = document.getElementById('video');"
                                   " return v.readyState >= 2 && v.videoWidth === 128; }", timeout=30_000)
            page.evaluate("document.getElementById('video').play()")
            page.wait_for_function("document.getElementById('video').currentTime > 0", timeout=30_000)
            for image in ("attention-gif", "attention-grid"):
                page.wait_for_function(f"() => {{ const i = document.getElementById('{image}');"
                                       " return i.complete && i.naturalWidth > 0; }", timeout=60_000)
            page.evaluate("document.getElementById('video').pause()")
            assert page.is_hidden("#error")
            page.screenshot(path=str(shot), full_page=True)
            assert console_errors == []

            # a bad upload: one error line on the page, and the page still works afterwards
            text = tmp_path / "notes.mp4"
            text.write_text("not a video\n" * 20)
            page.set_input_files("#file", str(text))
            page.wait_for_selector("#error:not([hidden])", timeout=30_000)
            line = page.inner_text("#error")
            assert "notes.mp4" in line and "\n" not in line
            page.set_input_files("#file", str(clip))
            page.wait_for_function("document.getElementById('error').hidden", timeout=30_000)
            page.wait_for_selector('.bar-row[data-rank="1"]', timeout=60_000)
        finally:
            context.close()
    assert outside == [], f"the page loaded something from elsewhere: {outside}"
    # the one error the console saw afterwards is the refused upload's HTTP status
    assert len(console_errors) == 1 and "415" in console_errors[0], console_errors
    assert shot.stat().st_size > 10_000


def test_page_fills_the_timeline_of_a_long_video(page_service, tmp_path):
    sync_playwright = browser_or_skip()
    service, model = page_service
    if not request(service.url, path="/info", headers={"X-API-Key": API_KEY}).json["timeline"]:
        pytest.skip("this installation has no paddlevideo.deploy.timeline (issue 22)")
    video, plan = write_long_demo_webm(tmp_path / "demo_long.webm", num_segments=6)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "serving_timeline.png"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1180, "height": 820}, http_credentials={"username": "me", "password": API_KEY})
        try:
            page = context.new_page()
            page.goto(service.url + "/")
            page.wait_for_selector("#service.ready", timeout=60_000)
            page.check("#want-timeline")
            page.set_input_files("#file", str(video))
            # the ribbon shows windows before the job is done, then "done"
            page.wait_for_function("/^[1-9][0-9]* \\/ [0-9]+ windows$|done/.test("
                                   "document.getElementById('timeline-progress').textContent)", timeout=60_000)
            page.wait_for_function("document.getElementById('timeline-progress').textContent.endsWith('done')",
                                   timeout=120_000)
            progress = page.inner_text("#timeline-progress")
            windows = int(progress.split()[0])
            assert windows >= 3
            # the ribbon is painted: coloured pixels where windows were drawn, one legend entry per class seen
            painted = page.evaluate("""() => {
                const c = document.getElementById('ribbon');
                const d = c.getContext('2d').getImageData(0, Math.floor(c.height / 2), c.width, 1).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] !== d[i + 1] || d[i] !== d[i + 2])) n++;
                return n / (d.length / 4);
            }""")
            assert painted > 0.5, painted
            legend = page.locator("#ribbon-legend span").all_inner_texts()
            assert legend and set(legend) <= set(model.names)
            page.wait_for_selector('.bar-row[data-rank="1"]', timeout=60_000)  # the whole video's answer too
            assert page.is_hidden("#error")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
    assert shot.stat().st_size > 10_000
