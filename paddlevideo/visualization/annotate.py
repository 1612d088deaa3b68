"""A video with its predicted top-k labels and scores drawn on every frame (one prediction for the whole
video, or a timeline's current window per frame: :func:`annotate_timeline`).

The input is read with the project's decoders (:func:`paddlevideo.loader.decoders.open_video`) in chunks, so
long videos are never held in memory, and written with the same frame count, size and frame rate. Encoders,
first that works: PyAV H.264 (``libx264``; plays in browsers; even sizes only), PyAV MPEG-4 Part 2 (any
size), OpenCV ``mp4v`` (even sizes only: it would silently crop an odd one); with none available, an
animated GIF next to the requested path. The written file is decoded again to check its frame count and
size before it replaces anything at the output path.
"""

import os
from fractions import Fraction

import numpy as np

from .files import VisualizationError, atomic_output

ENCODERS = ("auto", "h264", "mpeg4", "cv2", "gif")
CHUNK = 64  # frames decoded and annotated at a time
DEFAULT_FPS = 25.0  # when the container states none


def _label_lines(labels, scores):
    if len(labels) != len(scores) or not len(labels):
        raise VisualizationError(f"need one score per label and at least one label, got {len(labels)} labels "
                                 f"and {len(scores)} scores")
    return [f"{rank}. {label} {float(score):.3f}" for rank, (label, score) in enumerate(zip(labels, scores), 1)]


def draw_labels(frame, lines):
    """Draw ``lines`` (top-k ``"1. name 0.987"``) in a translucent box at the top left of an RGB frame
    ``[H, W, 3]`` uint8; returns a new frame. Text size follows the frame height."""
    import cv2

    frame = np.ascontiguousarray(frame, dtype=np.uint8).copy()
    height = frame.shape[0]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.25, height / 640.0)
    thickness = max(1, int(round(height / 400.0)))
    sizes = [cv2.getTextSize(line, font, scale, thickness) for line in lines]
    line_height = max(h + base for (_, h), base in sizes) + max(2, int(4 * scale))
    pad = max(2, int(6 * scale))
    box_w = min(frame.shape[1], max(w for (w, _), _ in sizes) + 2 * pad)
    box_h = min(height, line_height * len(lines) + pad)
    region = frame[:box_h, :box_w].astype(np.float32)
    frame[:box_h, :box_w] = (0.45 * region).astype(np.uint8)  # darken behind the text
    for index, line in enumerate(lines):
        baseline = pad + line_height * index + sizes[index][0][1]
        colour = (255, 255, 255) if index else (255, 220, 64)  # the top-1 line stands out
        cv2.putText(frame, line, (pad, baseline), font, scale, colour, thickness, cv2.LINE_AA)
    return frame


def _annotated_chunks(reader, lines, scale):
    """Frames of ``reader`` with ``lines`` drawn: a list for every frame, or ``lines(index)`` per frame."""
    for start in range(0, reader.num_frames, CHUNK):
        frames = reader.get_frames(np.arange(start, min(reader.num_frames, start + CHUNK)))
        if scale > 1:
            frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
        yield [draw_labels(frame, lines(start + i) if callable(lines) else lines) for i, frame in enumerate(frames)]


class _EncoderUnavailable(Exception):
    """This encoder cannot write this video here (codec missing, size it cannot take)."""


def _write_pyav(path, chunks, fps, size, codec):
    import av

    height, width = size
    if codec == "libx264" and (width % 2 or height % 2):
        raise _EncoderUnavailable("H.264 (yuv420p) needs an even width and height")
    try:
        container = av.open(path, "w")
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18"}  # visually lossless: the text stays sharp
        else:  # MPEG-4 Part 2 has no quality target here: a generous bit rate instead of its 1 Mb/s default
            stream.bit_rate = int(max(2e6, 0.5 * width * height * fps))
    except Exception as err:  # codec not built into this PyAV
        raise _EncoderUnavailable(f"PyAV {codec}: {err}") from None
    try:
        for chunk in chunks:
            for frame in chunk:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    except av.error.ExternalError as err:  # e.g. avcodec_open2 refused the settings
        raise _EncoderUnavailable(f"PyAV {codec}: {err}") from None
    finally:
        container.close()


def _write_cv2(path, chunks, fps, size):
    import cv2

    height, width = size
    if width % 2 or height % 2:
        raise _EncoderUnavailable("OpenCV's mp4v writer crops odd sizes")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise _EncoderUnavailable("OpenCV cannot open an mp4v writer")
    try:
        for chunk in chunks:
            for frame in chunk:
                writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV wants BGR
    finally:
        writer.release()


def _write_gif(path, chunks, fps):
    from PIL import Image

    images = [Image.fromarray(frame) for chunk in chunks for frame in chunk]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(10, int(round(1000.0 / fps))), loop=0)


def _check_written(path, num_frames, size):
    """Decode ``path`` again (MP4 with the project's decoders, GIF with Pillow): same frame count and size?"""
    if path.endswith(".gif"):
        from PIL import Image

        with Image.open(path) as image:
            got_frames, got_size = image.n_frames, (image.height, image.width)
    else:
        from ..loader.decoders import open_video

        with open_video(path, "decord") as reader:
            got_frames, got_size = reader.num_frames, tuple(reader.get_frames([0]).shape[1:3])
    if (got_frames, got_size) != (num_frames, tuple(size)):
        raise _EncoderUnavailable(f"wrote {got_frames} frames of {got_size}, expected {num_frames} of {tuple(size)}")


def write_annotated_video(video, output, labels, scores, encoder="auto", backend="decord", scale=1):
    """Write ``video`` with ``labels`` / ``scores`` (top-k, best first) drawn on every frame.

    Args:
        video: input video path.
        output: output path, ``.mp4`` (or ``.gif`` to ask for a GIF).
        labels: class names (or ids) of the top-k predictions; scores: their probabilities.
        encoder: ``auto`` (the first that works: ``h264``, ``mpeg4``, ``cv2``, then ``gif``) or one of them.
        backend: decoder backend for reading ``video`` (``decord``, ``pyav``, ``cv2``).
        scale: integer enlargement (nearest neighbour) before drawing, for videos too small to hold legible
            text; 1 keeps the input's size.
    Returns:
        ``{'path', 'encoder', 'num_frames', 'size': (H, W), 'fps'}``; ``path`` ends in ``.gif`` when no video
        encoder could write the file.
    """
    return _write_video(video, output, _label_lines(labels, scores), encoder, backend, scale)


def _write_video(video, output, lines, encoder, backend, scale):
    """``video`` with ``lines`` (a list, or ``lines(frame index)``) drawn on every frame, written with the
    first encoder that works (see :func:`write_annotated_video`)."""
    from ..loader.decoders import open_video

    if encoder not in ENCODERS:
        raise VisualizationError(f"unknown encoder '{encoder}'; use one of {', '.join(ENCODERS)}")
    if int(scale) != scale or scale < 1:
        raise VisualizationError(f"scale must be a whole number >= 1, got {scale}")
    scale = int(scale)
    output = os.fspath(output)
    if output.lower().endswith(".gif"):
        encoder = "gif"
    with open_video(video, backend) as reader:
        num_frames, fps = reader.num_frames, reader.fps
        size = tuple(int(side) * scale for side in reader.get_frames([0]).shape[1:3])
    fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else DEFAULT_FPS
    order = ("h264", "mpeg4", "cv2", "gif") if encoder == "auto" else (encoder,)
    reasons = []
    for name in order:
        path = output if name != "gif" else os.path.splitext(output)[0] + ".gif"
        try:
            with atomic_output(path) as tmp:
                with open_video(video, backend) as reader:
                    chunks = _annotated_chunks(reader, lines, scale)
                    if name == "gif":
                        _write_gif(tmp, chunks, fps)
                    elif name == "cv2":
                        _write_cv2(tmp, chunks, fps, size)
                    else:
                        _write_pyav(tmp, chunks, fps, size, "libx264" if name == "h264" else "mpeg4")
                _check_written(tmp, num_frames, size)
        except _EncoderUnavailable as err:
            reasons.append(f"{name}: {err}")
            continue
        return {"path": path, "encoder": name, "num_frames": num_frames, "size": size, "fps": fps}
    raise VisualizationError(f"cannot write an annotated video for {video} ({'; '.join(reasons)})")


def annotated_path(out_dir, video):
    """Where :func:`annotate_prediction` writes ``video``: ``<out_dir>/<video's file name>.mp4`` (the full
    name, so ``a.avi`` and ``a.mp4`` of one folder do not collide and an input is never overwritten), kept
    inside ``out_dir`` whatever the input's name (``utils.files.output_name``)."""
    from ..common.files import output_name

    return os.path.join(os.fspath(out_dir), output_name(video) + ".mp4")


def annotate_prediction(result, out_dir, scale=1, backend="decord"):
    """Write a prediction's video with its top-k classes drawn on it (``tools/predict.py --visualize``).

    Args:
        result: a prediction of :func:`paddlevideo.deploy.predict.predict_videos` (``file``, ``class_ids``,
            ``class_names`` or None, ``scores``).
        out_dir: output folder (created); the file is :func:`annotated_path` (``.gif`` if no encoder works).
        scale, backend: as for :func:`write_annotated_video`.
    Returns:
        :func:`write_annotated_video`'s dict.
    """
    labels = result.get("class_names") or [str(i) for i in result["class_ids"]]
    return write_annotated_video(result["file"], annotated_path(out_dir, result["file"]), labels, result["scores"],
                                 backend=backend, scale=scale)


def timeline_lines(windows, fps, num_lines=3):
    """``lines(frame index)`` for :func:`_write_video`: the top classes of the window whose centre is nearest
    the frame's time (the current label of a timeline), then the time."""
    centres = np.array([(w["start_s"] + w["end_s"]) / 2.0 for w in windows])
    if not len(centres):
        raise VisualizationError("the timeline has no window to draw")

    def lines(index):
        t = index / fps
        nearest = int(np.clip(np.searchsorted(centres, t), 1, len(centres) - 1)) if len(centres) > 1 else 0
        if nearest and abs(centres[nearest - 1] - t) <= abs(centres[nearest] - t):
            nearest -= 1
        w = windows[nearest]
        names = w.get("class_names") or [str(i) for i in w["class_ids"]]
        ranked = _label_lines(names[:num_lines], w["scores"][:num_lines])
        return ranked + [f"at {t:.2f} s"]  # the top-1 first: draw_labels highlights the first line

    return lines


def annotate_timeline(timeline, out_dir, scale=1, backend="decord", encoder="auto"):
    """Write a timeline's video with its current label drawn on every frame (``tools/predict.py --timeline
    --visualize``): ``<out_dir>/<video's file name>.mp4`` (:func:`annotated_path`); each frame shows its
    time and the top classes of the window centred nearest to it. Returns :func:`write_annotated_video`'s dict.
    """
    fps = (timeline.plan or {}).get("fps")
    if not fps:
        raise VisualizationError(f"{timeline.source}: the timeline states no frame rate")
    lines = timeline_lines(timeline.windows, fps)
    return _write_video(timeline.source, annotated_path(out_dir, timeline.source), lines, encoder, backend, scale)
