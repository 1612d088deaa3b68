"""Files a user brings besides checkpoints: videos with absurd headers, configs, lists, label lists, exported
models, Hugging Face folders, and input names that try to steer where a tool writes."""

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from paddlevideo.loader.demo_data import write_avi

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PADDLEVIDEO_FAST_CPU_OPS": "0", "PYTHONPATH": str(REPO)}
ENV.pop("PADDLEVIDEO_DEBUG", None)
FRAMES = np.random.default_rng(0).integers(0, 255, (8, 48, 64, 3), dtype=np.uint8)


# ---------------------------------------------------------------- videos whose header claims absurd sizes

def _patch_avi(path, width=None, height=None, frames=None):
    """Write a real 64 x 48, 8-frame MJPG AVI, then overwrite its header's claims."""
    write_avi(path, FRAMES)
    data = bytearray(path.read_bytes())

    def payload(tag):
        at = data.find(tag)
        assert at >= 0, tag
        return at + 8

    avih, strh, strf = payload(b"avih"), payload(b"strh"), payload(b"strf")
    if frames is not None:
        struct.pack_into("<I", data, avih + 16, frames)
        struct.pack_into("<I", data, strh + 32, frames)
    if width is not None:
        struct.pack_into("<I", data, avih + 32, width)
        struct.pack_into("<I", data, avih + 36, height)
        struct.pack_into("<ii", data, strf + 4, width, height)
    path.write_bytes(bytes(data))
    return path


def _patch_mp4(path, side=None, frames=None):
    """Write a real 64 x 48, 8-frame MPEG-4 MP4 with OpenCV, then overwrite its track's claims."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    for frame in FRAMES:
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    data = bytearray(path.read_bytes())

    def box(kind):
        at = data.find(kind)
        assert at >= 4, kind
        size = struct.unpack_from(">I", data, at - 4)[0]
        return at + 4, at - 4 + size  # payload start, end

    if side is not None:
        start, end = box(b"tkhd")
        struct.pack_into(">II", data, end - 8, side << 16, side << 16)
        start, _ = box(b"stsd")
        struct.pack_into(">HH", data, start + 8 + 32, side, side)
    if frames is not None:
        start, _ = box(b"stsz")
        struct.pack_into(">I", data, start + 8, frames)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def absurd_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("absurd")
    return {
        "avi_100000x100000": _patch_avi(folder / "wide.avi", width=100_000, height=100_000),
        "avi_1e9_frames": _patch_avi(folder / "long.avi", frames=10**9),
        "mp4_60000x60000": _patch_mp4(folder / "wide.mp4", side=60_000),
        "mp4_1e9_frames": _patch_mp4(folder / "long.mp4", frames=10**9),
        "real_avi": _patch_avi(folder / "real.avi"),
        "real_mp4": _patch_mp4(folder / "real.mp4"),
    }


# The child opens every file with every backend under a 1.5 GB address-space limit: a buffer or frame table
# sized from the header would fail there (or kill the child); the refusal allocates nothing.
CHILD = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
    from paddlevideo.loader.decoders import VideoOpenError, open_video
    out = {}
    for name, path in json.loads(sys.argv[1]).items():
        for backend in ("decord", "pyav", "cv2"):
            try:
                with open_video(path, backend) as reader:
                    out[f"{name}/{backend}"] = ["ok", list(reader.get_frames([0, reader.num_frames - 1]).shape)]
            except VideoOpenError as err:
                out[f"{name}/{backend}"] = ["refused", str(err)]
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
""")


def test_absurd_headers_are_refused_before_any_allocation(absurd_videos):
    paths = {name: str(path) for name, path in absurd_videos.items()}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(paths)], capture_output=True, text=True,
                          timeout=120, env=ENV, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, path in paths.items():
        for backend in ("decord", "pyav", "cv2"):
            status, detail = out[f"{name}/{backend}"]
            if name.startswith("real"):
                assert status == "ok" and detail == [2, 48, 64, 3], (name, backend, detail)
                continue
            assert status == "refused", (name, backend, detail)
            assert detail.startswith(f"{path}: its ") and "\n" not in detail, detail
            claim = "100000 x 100000" if "100000" in name else "60000 x 60000" if "60000" in name else "1000000000 frames"
            assert claim in detail and "refusing to open it" in detail, detail
    assert out["maxrss_mb"] < 600, out["maxrss_mb"]


def test_without_the_check_decord_dies_on_the_frame_count(absurd_videos):
    """The control: decord opening the 10**9-frame AVI itself, under the same limit, does not survive it."""
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20)); import decord; "
            f"decord.VideoReader({str(absurd_videos['avi_1e9_frames'])!r}, num_threads=1); print('opened')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "opened" not in proc.stdout, (proc.returncode, proc.stderr[-500:])
