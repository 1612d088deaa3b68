"""Where a timeline's frames come from: a video file, a camera, a URL or a pipe, each read once, in order.

:func:`open_source` returns a :class:`FrameSource`: ``info`` (:class:`SourceInfo`: kind, frame rate, frame
count when the container states one) and ``frames(wanted)``, which yields ``(index, frame)`` for every
frame in order, ``frame`` being uint8 RGB ``[H, W, 3]`` when ``wanted(index)`` and None otherwise (a frame
nobody needs is decoded, as it must be, but never converted or kept).

Readers: files use the config's decoder backend (``decord``, ``pyav`` or ``cv2``; the same frames
``tools/predict.py`` reads); pipes (``-``, ``/dev/stdin``, a FIFO) and URLs (``rtsp://``, ``http://``, ...)
use PyAV (FFmpeg reads them as a stream, without seeking); a camera index uses OpenCV. Frame ``i`` of a
stream is the ``i``-th frame decoded, at time ``i / fps``.
"""

import os
import re
import stat
from dataclasses import dataclass

from ...loader.decoders import VideoOpenError
from ...common.errors import first_line

URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
STDIN_NAMES = ("-", "pipe:0", "pipe:")


@dataclass
class SourceInfo:
    """What is known about a source once it is open.

    Attributes:
        name: the source as the user gave it (path, ``0``, URL, ``-``).
        kind: ``file``, ``camera``, ``url`` or ``pipe``.
        fps: frames per second the source states (0.0 when it states none).
        num_frames: frames the reader expects (None for live sources and unknown lengths).
        announced_frames: frames the file's header announces (None if it does not say); a file that ends
            clearly earlier was cut off.
        backend: the reader (``decord``, ``pyav``, ``cv2``).
    """

    name: str
    kind: str
    fps: float
    num_frames: int = None
    announced_frames: int = None
    backend: str = None

    @property
    def live(self):
        """Whether frames arrive as they happen (camera, URL, pipe): no length, no progress bar."""
        return self.kind != "file"


def source_kind(source):
    """``file``, ``camera`` (an int or a string of digits), ``url`` (``scheme://...``) or ``pipe`` (``-``,
    ``pipe:0``, or a path that is a FIFO or character device such as ``/dev/stdin``)."""
    if isinstance(source, int) and not isinstance(source, bool):
        return "camera"
    text = os.fspath(source) if not isinstance(source, str) else source
    if text.isdigit():
        return "camera"
    if text in STDIN_NAMES:
        return "pipe"
    if URL_PATTERN.match(text):
        return "file" if text.startswith("file://") else "url"
    try:
        mode = os.stat(text).st_mode
    except OSError:
        return "file"
    return "pipe" if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode) else "file"


def is_live(source):
    """Whether ``source`` is a camera, URL or pipe (see :func:`source_kind`)."""
    return source_kind(source) != "file"


def source_stem(source):
    """A file-name stem naming ``source``: a file's name without extension, ``camera0``, ``stdin``, the
    URL's host and path; only letters, digits, ``-``, ``_`` and ``.`` (never a path)."""
    kind = source_kind(source)
    text = str(source)
    if kind == "camera":
        stem = f"camera{text}"
    elif text in STDIN_NAMES:
        stem = "stdin"
    elif kind == "url":
        stem = URL_PATTERN.sub("", text).replace("/", "_")
    else:
        stem = os.path.splitext(os.path.basename(text.rstrip("/")))[0]
    return sanitize_stem(stem)


def sanitize_stem(stem):
    """``stem``'s last path component reduced to ``[A-Za-z0-9._-]`` (others become ``_``), no leading dots,
    at most 120 characters, ``timeline`` if nothing is left: a name that stays inside the output folder."""
    last = re.split(r"[\\/]", str(stem))[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", last).lstrip(".")[:120].strip("_") or "timeline"


class FrameSource:
    """An open source; ``frames(wanted)`` reads it once (see the module docstring); ``close()`` releases it.
    ``start()`` runs in the reading thread before ``info`` is read (a source that connects lazily may block
    there; the caller's ``timeout_s`` covers it)."""

    info = None

    def start(self):
        pass

    def frames(self, wanted):
        raise NotImplementedError

    def frames_for_cuts(self, wanted):
        """Like :meth:`frames`, for cut detection, which looks at every frame: yields ``(index, frame, look)``,
        ``frame`` as :meth:`frames` gives it and ``look`` the pixels the detector sees, uint8 RGB ``[H, W, 3]``
        or grey ``[H, W]``, taken the same way for every frame. This default converts every frame to RGB; a
        source that decodes to YUV hands over its luma plane instead, which costs nothing."""
        for index, frame in self.frames(_every_frame):
            yield index, (frame if wanted(index) else None), frame

    def close(self):
        pass


class _DecordSource(FrameSource):
    def __init__(self, path):
        import decord

        try:
            self._reader = decord.VideoReader(path, num_threads=1)
        except Exception as err:  # decord raises its own DECORDError and RuntimeError
            raise VideoOpenError(f"{path}: decord cannot open it ({first_line(err)})") from err
        self.info = SourceInfo(path, "file", float(self._reader.get_avg_fps()), len(self._reader),
                               _announced_frames(path), "decord")

    def frames(self, wanted):
        # next() in order (no seeks): get_batch of sparse indices seeks for each, skip_frames is slower than next
        reader = self._reader
        for index in range(len(reader)):
            try:
                frame = reader.next()
            except StopIteration:
                return
            yield index, (frame.asnumpy() if wanted(index) else None)

    def close(self):
        self._reader = None


class _PyAVSource(FrameSource):
    def __init__(self, name, kind, timeout_s):
        import av

        target = "pipe:0" if name in STDIN_NAMES else name
        options = {"timeout": timeout_s} if kind == "url" else {}
        try:
            self._container = av.open(target, **options)
            self._stream = self._container.streams.video[0]
        except Exception as err:
            raise VideoOpenError(f"{name}: PyAV cannot open it ({first_line(err)})") from err
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        count = announced = None
        if kind == "file":
            announced = _stream_frame_count(stream, self._container, fps)
            count = announced
        self.info = SourceInfo(name, kind, fps, count, announced, "pyav")

    def frames(self, wanted):
        for index, frame in enumerate(self._container.decode(self._stream)):
            yield index, (frame.to_ndarray(format="rgb24") if wanted(index) else None)

    def frames_for_cuts(self, wanted):
        # PyAV's RGB conversion costs milliseconds per frame; the luma plane is already there
        for index, frame in enumerate(self._container.decode(self._stream)):
            yield index, (frame.to_ndarray(format="rgb24") if wanted(index) else None), _luma(frame)

    def close(self):
        container, self._container = getattr(self, "_container", None), None
        if container is not None:
            container.close()


class _Cv2Source(FrameSource):
    def __init__(self, name, kind):
        import cv2

        self._cv2 = cv2
        self._capture = cv2.VideoCapture(int(name) if kind == "camera" else name)
        if not self._capture.isOpened():
            what = "camera" if kind == "camera" else "it"
            raise VideoOpenError(f"{name}: OpenCV cannot open {what}")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if kind == "file" else 0
        self.info = SourceInfo(str(name), kind, fps if fps > 0 else 0.0, count or None, count or None, "cv2")

    def frames(self, wanted):
        cv2, index = self._cv2, 0
        while True:
            if wanted(index):
                ok, frame = self._capture.read()
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if ok else None
            else:
                ok, frame = self._capture.grab(), None  # grab() skips the colour conversion
            if not ok:
                return
            yield index, frame
            index += 1

    def close(self):
        capture, self._capture = getattr(self, "_capture", None), None
        if capture is not None:
            capture.release()


def _every_frame(index):
    return True


# 8-bit pixel formats whose first plane is the luma (or grey) picture, one byte a pixel
LUMA_FIRST_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p",
                                "yuvj440p", "yuv411p", "yuv410p", "nv12", "nv21", "gray"})


def _luma(frame):
    """The grey image of a PyAV frame, uint8 ``[H, W]``: a view of its Y plane for 8-bit YUV formats (no
    conversion), else the converted grey picture."""
    import numpy as np

    if frame.format.name in LUMA_FIRST_FORMATS:
        plane, height = frame.planes[0], frame.height
        pixels = np.frombuffer(plane, np.uint8)[:plane.line_size * height]  # rows padded to line_size bytes
        return pixels.reshape(height, plane.line_size)[:, :frame.width]
    return frame.to_ndarray(format="gray")


def _stream_frame_count(stream, container, fps):
    """Frames a PyAV stream's header announces (its frame count, else duration x fps), or None."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    if stream.duration and stream.time_base and fps:
        return int(round(stream.duration * float(stream.time_base) * fps))
    if container.duration and fps:
        return int(round(container.duration / 1e6 * fps))  # container duration is in microseconds
    return None


def _announced_frames(path):
    """Frames ``path``'s header announces, read with PyAV without decoding (None if it cannot tell): decord
    counts the frames it finds, so a cut-off AVI looks complete to it."""
    try:
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            return _stream_frame_count(stream, container, float(rate) if rate else 0.0)
    except Exception:  # no PyAV, or a header it cannot read: no announced length to compare with
        return None


def open_source(source, backend="decord", timeout_s=30.0):
    """Open ``source`` (a path, a camera index, a URL or a pipe; see :func:`source_kind`).

    Files are read with ``backend``; pipes and URLs with PyAV; cameras with OpenCV. Blocks while a pipe
    has no writer or a URL does not answer (callers run it in a thread and time it).

    Raises:
        VideoOpenError: the source cannot be opened or has no video stream (one line naming it).
    """
    kind = source_kind(source)
    name = str(source)
    if kind == "camera":
        return _Cv2Source(name, kind)
    if kind in ("url", "pipe"):
        return _PyAVSource(name, kind, timeout_s)
    if name.startswith("file://"):
        name = name[len("file://"):]
    if not os.path.isfile(name):
        raise VideoOpenError(f"{name}: no such file")
    if backend == "decord":
        return _DecordSource(name)
    if backend == "pyav":
        return _PyAVSource(name, kind, timeout_s)
    if backend == "cv2":
        return _Cv2Source(name, kind)
    raise VideoOpenError(f"unknown video backend '{backend}'; choose decord, pyav or cv2")
