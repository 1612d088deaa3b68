"""Video readers that decode only the frames asked for, behind one interface.

``open_video(path, backend)`` returns a reader with ``num_frames``, ``fps``, ``get_frames(indices)`` (uint8 RGB
``[N, H, W, 3]``, in the order of ``indices``, repeats allowed) and ``close()``. The frame count and the frame
rate come from the container, so the sampler can choose its indices before anything is decoded.

Backends: ``decord`` (default; its own frame index, seeks to the nearest key frame), ``pyav`` (FFmpeg via PyAV;
frames are numbered by presentation time) and ``cv2`` (OpenCV's FFmpeg reader; numbered by its position
property). They return the same frames on intra-only files such as MJPEG AVI; on long-GOP files (H.264 MP4)
frame counts and indexing can differ slightly: see docs/data.md.
"""

import numpy as np

from ..common.errors import InputError
from .video_header import VideoHeaderError, check_video_claims

BACKENDS = ("decord", "pyav", "cv2")

# Read forward instead of seeking when the next wanted frame is at most this many frames ahead: a seek lands
# on a key frame before the target and decodes from there, which costs more than a short forward read.
_FORWARD_READ_LIMIT = 12


# codecs whose every frame is a key frame
_INTRA_ONLY_FOURCCS = {"MJPG", "MJPA", "JPEG", "PNG ", "RAW ", "HUFFYUV", "FFV1", "PRORES"}


class VideoOpenError(InputError, RuntimeError):
    """A video cannot be opened or has no readable frames."""


class VideoDecodeError(InputError, RuntimeError):
    """A requested frame cannot be decoded."""


class _Reader:
    """Common part: validation of indices and the context-manager protocol."""

    num_frames = 0
    fps = 0.0

    def __init__(self, path):
        self.path = str(path)

    def _check(self, indices):
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_frames):
            raise VideoDecodeError(f"{self.path}: frame index out of range 0..{self.num_frames - 1}: {indices}")
        return indices

    def get_frames(self, indices):
        """Decode the frames at ``indices`` -> uint8 RGB ``[len(indices), H, W, 3]``."""
        indices = self._check(indices)
        unique = np.unique(indices)
        decoded = self._decode_sorted(unique)
        position = np.searchsorted(unique, indices)
        return np.stack([decoded[i] for i in position])

    def _decode_sorted(self, unique):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DecordReader(_Reader):
    def __init__(self, path):
        super().__init__(path)
        import decord

        try:
            # one thread per reader: loader workers already give one process per core
            self._reader = decord.VideoReader(self.path, num_threads=1)
        except Exception as err:  # decord raises its own DECORDError and RuntimeError
            raise VideoOpenError(f"{self.path}: decord cannot open it ({_first_line(err)})") from err
        self.num_frames = len(self._reader)
        self.fps = float(self._reader.get_avg_fps())

    def _decode_sorted(self, unique):
        try:
            return list(self._reader.get_batch(unique.tolist()).asnumpy())
        except Exception as err:
            raise VideoDecodeError(f"{self.path}: decord failed on frames {unique.tolist()} "
                                   f"({_first_line(err)})") from err

    def close(self):
        self._reader = None


class PyAVReader(_Reader):
    """Frames are numbered ``round((pts - start) * time_base * fps)``, as a constant-rate stream would."""

    def __init__(self, path):
        super().__init__(path)
        import av

        try:
            self._container = av.open(self.path)
            self._stream = self._container.streams.video[0]
        except Exception as err:
            raise VideoOpenError(f"{self.path}: PyAV cannot open it ({_first_line(err)})") from err
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self._time_base = float(stream.time_base)
        self._start = stream.start_time or 0
        self.num_frames = int(stream.frames)
        if self.num_frames <= 0 and stream.duration and self.fps:
            # some containers do not store a frame count; estimate it from the duration
            self.num_frames = int(round(stream.duration * self._time_base * self.fps))
        if self.num_frames <= 0 or self.fps <= 0:
            self.close()
            raise VideoOpenError(f"{self.path}: PyAV finds no frame count / frame rate in the video stream")
        stream.thread_type = "NONE"  # one core per loader worker
        self._frames = None  # the running decode generator
        self._last = -1  # index of the last decoded frame
        self._keyframes = None  # frame indices of key frames, read lazily from packet headers

    def _keyframe_indices(self):
        if self._keyframes is None:
            # demuxing reads packet headers only (no decoding): cheap, and it tells where a seek can land
            keys = [self._index(packet) for packet in self._container.demux(self._stream)
                    if packet.is_keyframe and packet.pts is not None]
            self._keyframes = np.unique(np.asarray(keys or [0], dtype=np.int64))
            self._container.seek(self._start, stream=self._stream, backward=True, any_frame=False)
            self._frames = None
        return self._keyframes

    def _should_seek(self, index):
        if self._frames is None or index <= self._last:
            return True
        # seek only when a key frame lies beyond the current position: decoding forward is never slower otherwise
        keys = self._keyframe_indices()
        key = keys[np.searchsorted(keys, index, side="right") - 1] if keys[0] <= index else 0
        return key > self._last + 1

    def _index(self, frame):
        pts = frame.pts if frame.pts is not None else frame.dts
        return int(round((pts - self._start) * self._time_base * self.fps))

    def _seek(self, index):
        target = int(self._start + index / self.fps / self._time_base)
        # lands on the key frame at or before target; decoding forward from there reaches the frame
        self._container.seek(max(target, self._start), stream=self._stream, backward=True, any_frame=False)
        self._frames = self._container.decode(self._stream)
        self._last = -1

    def _decode_sorted(self, unique):
        out = []
        previous = None
        self._keyframe_indices()  # before decoding: building it rewinds the container
        try:
            for index in unique.tolist():
                if self._should_seek(index):
                    self._seek(index)
                frame = None
                for frame in self._frames:
                    self._last = self._index(frame)
                    if self._last >= index:
                        break
                    previous = frame
                else:
                    # the stream ended early (frame count overstated): keep the last frame decoded
                    self._frames = None
                    if frame is None:
                        frame = previous
                    if frame is None:
                        raise VideoDecodeError(f"{self.path}: PyAV decoded no frame at index {index}")
                out.append(frame.to_ndarray(format="rgb24"))
                previous = frame
        except VideoDecodeError:
            raise
        except Exception as err:
            raise VideoDecodeError(f"{self.path}: PyAV failed near frame {index} ({_first_line(err)})") from err
        return out

    def close(self):
        container, self._container = getattr(self, "_container", None), None
        self._frames = None
        if container is not None:
            container.close()


class Cv2Reader(_Reader):
    def __init__(self, path):
        super().__init__(path)
        import cv2

        self._cv2 = cv2
        self._capture = cv2.VideoCapture(self.path)
        if not self._capture.isOpened():
            raise VideoOpenError(f"{self.path}: OpenCV cannot open it")
        self.num_frames = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        if self.num_frames <= 0 or self.fps <= 0:
            self.close()
            raise VideoOpenError(f"{self.path}: OpenCV finds no frame count / frame rate")
        self._next = 0  # index of the frame the next read() returns
        fourcc = int(self._capture.get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).upper()
        # OpenCV exposes no key-frame index: seek only in intra-only streams, where a seek decodes one frame;
        # in long-GOP streams a seek re-decodes from the previous key frame, so read forward instead
        self._intra_only = codec in _INTRA_ONLY_FOURCCS

    def _decode_sorted(self, unique):
        cv2 = self._cv2
        out = []
        for index in unique.tolist():
            if index < self._next or (self._intra_only and index - self._next > _FORWARD_READ_LIMIT):
                self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
                self._next = index
            while self._next < index:  # grab() skips the colour conversion of frames we do not keep
                if not self._capture.grab():
                    raise VideoDecodeError(f"{self.path}: OpenCV cannot read frame {self._next}")
                self._next += 1
            ok, frame = self._capture.read()
            if not ok:
                raise VideoDecodeError(f"{self.path}: OpenCV cannot read frame {index}")
            self._next += 1
            out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        return out

    def close(self):
        capture, self._capture = getattr(self, "_capture", None), None
        if capture is not None:
            capture.release()


_READERS = {"decord": DecordReader, "pyav": PyAVReader, "cv2": Cv2Reader}


def open_video(path, backend="decord"):
    """Open ``path`` with ``backend`` (one of ``BACKENDS``) and return its reader.

    Raises:
        VideoOpenError: the file is missing, not a video, has no frames, or its header claims a frame size or
            count beyond ``video_header``'s limits (checked before the backend opens it).
        ValueError: unknown backend.
    """
    if backend not in _READERS:
        raise ValueError(f"unknown video backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    import os

    if not os.path.isfile(path):
        if os.path.islink(path):
            raise VideoOpenError(f"{path}: broken symbolic link (its target '{os.readlink(path)}' does not exist)")
        raise VideoOpenError(f"{path}: no such file")
    try:  # before any decoder sizes its buffers from the header (docs/reliability.md, "Files from elsewhere")
        check_video_claims(path)
    except VideoHeaderError as err:
        raise VideoOpenError(str(err)) from None
    reader = _READERS[backend](path)
    if reader.num_frames <= 0:
        reader.close()
        raise VideoOpenError(f"{path}: the video has no frames")
    return reader


def decode_all(path, backend="decord"):
    """Decode every frame of ``path`` in order (uint8 RGB ``[N, H, W, 3]``); the baseline the benchmark compares with."""
    with open_video(path, backend) as reader:
        if backend == "decord":
            return reader.get_frames(np.arange(reader.num_frames))
        frames = []
        if backend == "pyav":
            for frame in reader._container.decode(reader._stream):
                frames.append(frame.to_ndarray(format="rgb24"))
        else:
            cv2 = reader._cv2
            while True:
                ok, frame = reader._capture.read()
                if not ok:
                    break
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        return np.stack(frames)


def _first_line(err):
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
