"""Annotated predictions: the written video has the input's frame count and size, decodes with the project's
decoders, and shows the labels (its frames differ from the input where the text is, and only there)."""

import numpy as np
import pytest

from paddlevideo.loader.decoders import open_video
from paddlevideo.visualization.annotate import draw_labels, write_annotated_video
from paddlevideo.visualization.files import VisualizationError


def make_video(path, num_frames, height, width, seed=0):
    """A lossless (PNG-in-AVI, written with PyAV: any size, odd too) video of smooth gradients."""
    import av

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(num_frames):
        base = (x * 2 + y + 5 * t) % 200 + 30
        frames.append(np.stack([base, (base + 60) % 256, np.full_like(base, 90 + rng.integers(0, 20))], -1))
    container = av.open(str(path), "w")
    stream = container.add_stream("png", rate=24)
    stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
    for frame in np.asarray(frames, np.uint8):
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def decoded(path, backend):
    with open_video(str(path), backend) as reader:
        return reader.get_frames(np.arange(reader.num_frames))


@pytest.mark.parametrize("encoder, size", [("auto", (96, 128)), ("mpeg4", (97, 131)), ("cv2", (96, 128))])
def test_annotated_video_keeps_frames_and_size_and_decodes(tmp_path, encoder, size):
    source = tmp_path / "in.avi"
    make_video(source, 37, *size)
    result = write_annotated_video(source, tmp_path / "out.mp4", ["archery", "bowling", "yoga"], [0.91, 0.05, 0.01],
                                   encoder=encoder)
    assert result["path"] == str(tmp_path / "out.mp4") and result["num_frames"] == 37
    if encoder == "auto":
        assert result["encoder"] == "h264"
    original = decoded(source, "decord").astype(int)
    assert original.shape == (37,) + size + (3,)
    for backend in ("decord", "pyav", "cv2"):
        frames = decoded(result["path"], backend).astype(int)
        assert frames.shape == (37,) + size + (3,), backend
    frames = decoded(result["path"], "decord").astype(int)
    # the label box (top left) changed a lot; the bottom right quarter only by compression
    height, width = size
    assert np.abs(frames[:, :height // 8, :width // 3] - original[:, :height // 8, :width // 3]).mean() > 20
    assert np.abs(frames[:, height // 2:, width // 2:] - original[:, height // 2:, width // 2:]).mean() < 8
    assert not list(tmp_path.glob(".*partial*"))


def test_gif_when_asked_or_when_no_encoder_works(tmp_path, monkeypatch):
    from PIL import Image

    source = tmp_path / "in.avi"
    make_video(source, 9, 40, 56)
    result = write_annotated_video(source, tmp_path / "out.gif", ["a"], [1.0])
    with Image.open(result["path"]) as image:
        assert (image.n_frames, image.size) == (9, (56, 40))
    enlarged = write_annotated_video(source, tmp_path / "big.mp4", ["a"], [1.0], scale=3)
    assert decoded(enlarged["path"], "pyav").shape == (9, 120, 168, 3) and enlarged["size"] == (120, 168)
    # no video encoder on this machine (third-party failure injected): a GIF next to the requested path
    import av
    import cv2

    monkeypatch.setattr(av, "open", lambda *a, **k: (_ for _ in ()).throw(av.error.ValueError(22, "no codec")))
    monkeypatch.setattr(cv2, "VideoWriter", lambda *a, **k: type("Closed", (), {"isOpened": lambda self: False})())
    result = write_annotated_video(source, tmp_path / "fallback.mp4", ["a"], [1.0])
    assert result["encoder"] == "gif" and result["path"] == str(tmp_path / "fallback.gif")
    assert not (tmp_path / "fallback.mp4").exists()
    with Image.open(result["path"]) as image:
        assert (image.n_frames, image.size) == (9, (56, 40))


def test_draw_labels_and_errors(tmp_path):
    frame = np.full((120, 160, 3), 128, np.uint8)
    drawn = draw_labels(frame, ["1. archery 0.910", "2. yoga 0.050"])
    assert drawn.shape == frame.shape and np.array_equal(frame, np.full_like(frame, 128))  # input untouched
    assert (drawn[:20, :60] != 128).any() and np.array_equal(drawn[80:], frame[80:])
    with pytest.raises(VisualizationError, match="one score per label"):
        write_annotated_video(tmp_path / "x.avi", tmp_path / "o.mp4", ["a", "b"], [1.0])
    with pytest.raises(VisualizationError, match="unknown encoder"):
        write_annotated_video(tmp_path / "x.avi", tmp_path / "o.mp4", ["a"], [1.0], encoder="vp9")
