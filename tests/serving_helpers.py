"""Helpers for the serving tests: the tiny exported model, a real ``tools/serve.py`` process on 127.0.0.1, and a
plain-stdlib HTTP client (one connection per request, as independent clients make them)."""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 120  # seconds for the service to print its address and to report ready (a loaded machine)
SERVING_LINE = re.compile(r"serve\.py: serving .* on http://(?P<host>[^ ]+):(?P<port>\d+)/")


def export_tiny(folder):
    """The tiny model (tests/conftest.py's overrides) with random weights, exported as ``.pdmodel``, its config
    file, its dygraph weights and a label list of 10 names: ``SimpleNamespace(config, model, params, weights,
    labels, names)``."""
    from conftest import K400_CONFIG, TINY_OVERRIDES
    from test_deploy_export import save_random_weights

    from paddlevideo.deploy.export import export_model
    from paddlevideo.config import get_config
    from paddlevideo.config import save_config

    folder = Path(folder)
    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    weights = save_random_weights(cfg, folder / "tiny.pdparams")
    exported = export_model(cfg, str(weights), str(folder / "export"), fmt="pdmodel")
    names = ["archery", "bowling", "cartwheeling", "dancing", "eating cake", "fencing", "golf driving",
             "hula hooping", "ice skating", "juggling balls"]
    labels = folder / "labels.txt"
    labels.write_text("".join(f"{i} {name}\n" for i, name in enumerate(names)))
    return SimpleNamespace(config=str(save_config(cfg, folder / "tiny.yaml")), model=exported["model"],
                           params=exported["params"], weights=str(weights), labels=str(labels), names=names)


def write_noise_avi(path, frames=24, size=(64, 48), seed=0):
    """A small MJPG AVI of random frames (decodes in milliseconds)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    rng = np.random.RandomState(seed)
    for _ in range(frames):
        writer.write(rng.randint(0, 255, (size[1], size[0], 3), np.uint8))
    writer.release()
    return Path(path)


WEBM_WRITER = """
import sys
import av
import numpy as np
frames = np.load(sys.argv[1])
with av.open(sys.argv[2], "w") as container:
    stream = container.add_stream("libvpx", rate=int(sys.argv[3]))
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    for frame in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
"""


def write_demo_webm(path, label=0, num_frames=32, side=128, seed=0, fps=15):
    """A demo-dataset clip (a shape moving right/left/down/up, ``paddlevideo.loader.demo_data``), enlarged to
    ``side`` px and written as VP8 WebM, which browsers play."""
    from paddlevideo.loader.demo_data import make_clip

    return write_webm(path, make_clip(np.random.default_rng(seed), label, num_frames=num_frames, size=32), side, fps)


def write_long_demo_webm(path, num_segments=8, seed=0, side=128, fps=30):
    """The long demo video (``demo_data.make_segment`` after ``long_video_plan``: segments of 1-4 s, the class
    changing at each) as VP8 WebM; returns ``(path, [(class_id, frames), ...])``."""
    from paddlevideo.loader.demo_data import long_video_plan, make_segment

    rng = np.random.default_rng([seed, 2])
    plan = long_video_plan(rng, num_segments, fps=fps)
    frames = np.concatenate([make_segment(rng, label, count) for label, count in plan])
    return write_webm(path, frames, side, fps), plan


def write_webm(path, frames, side=128, fps=15):
    """uint8 RGB frames ``[T, 32, 32, 3]`` enlarged to ``side`` px, as VP8 WebM. PyAV encodes it in a child
    process: with decord already loaded in this one (other tests import it), PyAV's libvpx fails with an ABI
    mismatch."""
    scale = side // frames.shape[1]
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    raw = Path(path).with_suffix(".frames.npy")
    np.save(raw, frames)
    try:
        done = subprocess.run([sys.executable, "-c", WEBM_WRITER, str(raw), str(path), str(fps)],
                              capture_output=True, text=True, timeout=120)
    finally:
        raw.unlink()
    assert done.returncode == 0, done.stderr[-2000:]
    return Path(path)


def predict_tool_json(model, folder, top_k):
    """``tools/predict.py --output json`` on a file or folder: ``{file name: result}``."""
    done = subprocess.run([sys.executable, str(REPO / "tools" / "predict.py"), "--input_file", str(folder),
                           "--config", model.config, "--model_file", model.model, "--params_file", model.params,
                           "--label_file", model.labels, "--top_k", str(top_k), "--output", "json"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {os.path.basename(result["file"]): result for result in results}


# ------------------------------------------------------------------ HTTP, standard library only

class Reply(SimpleNamespace):
    """``status``, ``headers`` (lower-case names), ``body`` (bytes), ``json`` (or None)."""


def request(url, method="GET", path="/", body=None, headers=None, timeout=60):
    """One request on a fresh connection; returns a :class:`Reply`."""
    match = re.match(r"http://([^:/]+):(\d+)", url)
    conn = http.client.HTTPConnection(match.group(1), int(match.group(2)), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        reply_headers = {name.lower(): value for name, value in response.getheaders()}
    finally:
        conn.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = None
    return Reply(status=response.status, headers=reply_headers, body=data, json=parsed)


def multipart(content, filename="video.avi", field="file"):
    """``(body, content type)`` of a form with one file field."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post_video(url, content, filename="video.avi", route="/predict", query="", headers=None, timeout=60):
    body, kind = multipart(content, filename)
    return request(url, "POST", route + query, body, dict(headers or {}, **{"Content-Type": kind}), timeout)


# ------------------------------------------------------------------ the service process

class ServerProcess:
    """``tools/serve.py`` in a subprocess on 127.0.0.1 and a free port, its temporary files under ``tmpdir``
    (its ``TMPDIR``), its output in ``tmpdir/../serve.{out,err}``. :meth:`stop` sends SIGTERM and returns the
    exit code; :meth:`kill` is the fixture's last resort."""

    def __init__(self, model, tmpdir, *extra, env=None, wait_ready=True):
        self.tmpdir = Path(tmpdir)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.err_path = self.tmpdir.parent / f"{self.tmpdir.name}.serve.err"
        self.out_path = self.tmpdir.parent / f"{self.tmpdir.name}.serve.out"
        cmd = [sys.executable, str(REPO / "tools" / "serve.py"), "-c", model.config, "--model_file", model.model,
               "--params_file", model.params, "--label_file", model.labels, "--port", "0", "--no_access_log",
               *map(str, extra)]
        environ = dict(os.environ, TMPDIR=str(self.tmpdir), PYTHONUNBUFFERED="1")
        environ.pop("PADDLEVIDEO_API_KEY", None)  # only the key a test gives
        environ.update(env or {})
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=err, env=environ)
        self.url = self._wait_for_address()
        if wait_ready:
            self.wait_ready()

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def _wait_for_address(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = SERVING_LINE.search(self.stderr())
            if found:
                return f"http://{found['host']}:{found['port']}"
            if self.proc.poll() is not None:
                raise AssertionError(f"serve.py exited with {self.proc.returncode}:\n{self.stderr()[-3000:]}")
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"serve.py printed no address within {START_TIMEOUT} s:\n{self.stderr()[-3000:]}")

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve.py exited with {self.proc.returncode}:\n{self.stderr()[-3000:]}")
            try:
                if request(self.url, path="/health", timeout=5).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.kill()
        raise AssertionError(f"serve.py not ready within {START_TIMEOUT} s:\n{self.stderr()[-3000:]}")

    def rss_bytes(self):
        """Resident memory of the service process now (Linux ``/proc``)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Send ``sig`` (None: only wait); the exit code (fails instead of waiting longer than ``timeout`` s)."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"serve.py did not stop within {timeout} s of {sig!r}:\n{self.stderr()[-3000:]}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def leftovers(self):
        """Every file left under the service's TMPDIR."""
        return sorted(str(p.relative_to(self.tmpdir)) for p in self.tmpdir.rglob("*") if p.is_file())


def metric(text, name, **labels):
    """The value of one sample in Prometheus text (0.0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        if sample != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if all(found.get(k) == str(v) for k, v in labels.items()):
            return float(value)
    return 0.0
