"""The demo dataset: short clips of a moving shape whose four classes differ only in motion direction.

Classes: 0 right, 1 left, 2 down, 3 up. "Left" is "right" played backwards with the same start / end /
speed distribution (likewise "up" is "down" reversed), and the coordinate across the motion follows the
same distribution as the moving one, so a single frame carries no class information and the *set* of
frames only tells the axis: a model blind to frame order is capped at about 50 % top-1. The background
is a fixed dark grey (60) with per-pixel Gaussian noise (std 12) redrawn every frame; the shape (one of
four, random size) has a random colour brighter than the background in every channel. Every clip is
drawn from its own generator seeded by ``(seed, split, index)``, so a dataset is reproducible clip by clip.
"""

import json
import os

import numpy as np

from ..common.logger import get_logger
from .list_files import write_label_list, write_list_file

CLASS_NAMES = ("right", "left", "down", "up")
SHAPES = ("square", "circle", "diamond", "cross")
_SPLIT_IDS = {"train": 0, "val": 1}
BACKGROUND = 60.0  # grey level of every background pixel before noise (0-255)
# Bump when the clips a given seed produces change, so tools/demo.py regenerates stale data.
GENERATOR_VERSION = 2
MANIFEST = "demo_data.json"


def _signed_distance(shape, dx, dy, radius):
    """Signed distance in pixels (negative inside) from pixel centres to a shape centred at 0."""
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - radius
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - radius
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy) - radius) / np.sqrt(2.0)
    # cross: union of a horizontal and a vertical bar, each a third of the size thick
    arm = radius / 3.0
    horizontal = np.maximum(np.abs(dx) - radius, np.abs(dy) - arm)
    vertical = np.maximum(np.abs(dx) - arm, np.abs(dy) - radius)
    return np.minimum(horizontal, vertical)


def make_clip(rng, label, num_frames=8, size=32):
    """Render one clip of class ``label`` as uint8 RGB frames ``[T, H, W, 3]`` (T = num_frames, H = W = size).

    Args:
        rng: a ``numpy.random.Generator``; the only source of randomness.
        label: class id, 0 right, 1 left, 2 down, 3 up.
        num_frames: frames per clip.
        size: frame height and width in pixels.
    """
    if label not in range(len(CLASS_NAMES)):
        raise ValueError(f"label must be 0..{len(CLASS_NAMES) - 1}, got {label}")
    shape = SHAPES[rng.integers(len(SHAPES))]
    radius = rng.uniform(0.1, 0.18) * size
    low, high = radius + 1.0, size - radius - 1.0

    def draw_path():
        # start and end of a forward (right / down) move, travelling 40-90 % of the free range
        length = rng.uniform(0.4, 0.9) * (high - low)
        start = rng.uniform(low, high - length)
        return start, start + length

    start, end = draw_path()
    moving = np.linspace(start, end, num_frames)
    if label in (1, 3):  # the backward classes are the forward ones played in reverse
        moving = moving[::-1]
    # across the motion: the position of a random frame of an independent path, so one frame's
    # coordinates have the same distribution on both axes
    cross_start, cross_end = draw_path()
    across = cross_start + rng.uniform() * (cross_end - cross_start)
    if label in (0, 1):
        centre_x, centre_y = moving, np.full(num_frames, across)
    else:
        centre_x, centre_y = np.full(num_frames, across), moving

    pixel = np.arange(size) + 0.5
    dx = pixel[None, None, :] - centre_x[:, None, None]
    dy = pixel[None, :, None] - centre_y[:, None, None]
    return _draw(rng, shape, radius, dx, dy)


def _draw(rng, shape, radius, dx, dy):
    """Frames ``[T, H, W, 3]`` uint8 of ``shape`` at pixel offsets ``dx``, ``dy`` ``[T, H, W]`` from its centre,
    in a random colour over the noisy background (draws the colour, then the noise, from ``rng``)."""
    # anti-aliasing: pixel coverage from the signed distance, a one-pixel linear ramp at the edge
    coverage = np.clip(0.5 - _signed_distance(shape, dx, dy, radius), 0.0, 1.0)[..., None]

    # A fixed dark-grey background and a shape brighter than it in every channel: with a random
    # background and contrast polarity the tiny ViT sat at chance for ~1500+ updates (docs/benchmarks.md).
    colour = BACKGROUND + rng.uniform(100, 195, size=3)
    noise = rng.normal(0.0, 12.0, size=np.broadcast_shapes(dx.shape, dy.shape) + (3,))
    frames = (1.0 - coverage) * (BACKGROUND + noise) + coverage * colour
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def make_segment(rng, label, num_frames, size=32):
    """One segment of the long demo video: uint8 RGB ``[num_frames, size, size, 3]`` of one shape moving in
    the direction of class ``label`` the whole time.

    The shape, its size and colour, its coordinate across the motion and its speed are drawn as for a clip
    (:func:`make_clip`: the speed of a clip that travels 40-90 % of the free range in ``8`` frames); the
    motion is continuous for the whole segment: the frame wraps around along the motion axis (the shape
    leaving at one edge comes back in at the opposite edge at once), so every 8 consecutive frames show
    the move a clip of that class shows.
    """
    if label not in range(len(CLASS_NAMES)):
        raise ValueError(f"label must be 0..{len(CLASS_NAMES) - 1}, got {label}")
    shape = SHAPES[rng.integers(len(SHAPES))]
    radius = rng.uniform(0.1, 0.18) * size
    low, high = radius + 1.0, size - radius - 1.0
    step = rng.uniform(0.4, 0.9) * (high - low) / 7.0  # pixels per frame
    across = rng.uniform(low, high)
    moving = rng.uniform(0, size) + step * np.arange(num_frames) * (-1.0 if label in (1, 3) else 1.0)
    pixel = np.arange(size) + 0.5
    along = pixel[None, :] - moving[:, None]
    along = (along + size / 2.0) % size - size / 2.0  # offset to the nearest copy on the wrapped axis
    ones = np.ones((num_frames, size, size))
    if label in (0, 1):
        dx, dy = ones * along[:, None, :], ones * (pixel[None, :, None] - across)
    else:
        dx, dy = ones * (pixel[None, None, :] - across), ones * along[:, :, None]
    return _draw(rng, shape, radius, dx, dy)


def long_video_plan(rng, num_segments, min_s=1.0, max_s=4.0, fps=30):
    """``[(label, num_frames), ...]``: ``num_segments`` segments of lengths drawn uniformly from
    ``[min_s, max_s]`` seconds, each class different from the one before."""
    plan, previous = [], None
    for _ in range(num_segments):
        label = int(rng.choice([c for c in range(len(CLASS_NAMES)) if c != previous]))
        plan.append((label, max(1, int(round(rng.uniform(min_s, max_s) * fps)))))
        previous = label
    return plan


def make_long_video(path, num_segments=24, seed=0, min_s=1.0, max_s=4.0, fps=30, size=32):
    """Write the long demo video (MJPG AVI) to ``path`` and return its true segments.

    Segments (see :func:`make_segment`) follow each other without a gap; the video is written segment by
    segment, so memory holds one segment. Returns ``[{'start_s', 'end_s', 'start_frame', 'end_frame',
    'class_id', 'class_name'}, ...]`` (``end_frame`` exclusive).
    """
    rng = np.random.default_rng([seed, 2])  # its own stream: the clips of seed are not changed
    truth, frame = [], 0
    with _AviWriter(path, fps, size) as writer:
        for label, num_frames in long_video_plan(rng, num_segments, min_s, max_s, fps):
            writer.write(make_segment(rng, label, num_frames, size))
            truth.append({"start_s": frame / fps, "end_s": (frame + num_frames) / fps, "start_frame": frame,
                          "end_frame": frame + num_frames, "class_id": label, "class_name": CLASS_NAMES[label]})
            frame += num_frames
    return truth


TRUTH_COLUMNS = ("start_s", "end_s", "class_id", "class_name", "start_frame", "end_frame")


def write_truth_csv(path, truth):
    """The true segments as CSV (:data:`TRUTH_COLUMNS`), written whole."""
    import csv

    from ..common.files import write_atomically

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(TRUTH_COLUMNS)
            for row in truth:
                writer.writerow([round(row["start_s"], 6), round(row["end_s"], 6), row["class_id"],
                                 row["class_name"], row["start_frame"], row["end_frame"]])

    return write_atomically(path, write)


def read_truth_csv(path):
    """The rows of :func:`write_truth_csv` as dicts with numbers parsed."""
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{"start_s": float(r["start_s"]), "end_s": float(r["end_s"]), "class_id": int(r["class_id"]),
             "class_name": r["class_name"], "start_frame": int(r["start_frame"]), "end_frame": int(r["end_frame"])}
            for r in rows]


def write_avi(path, frames, fps=30):
    """Write uint8 RGB frames ``[T, H, W, 3]`` to ``path`` as an MJPG AVI."""
    height, width = frames.shape[1:3]
    with _AviWriter(path, fps, (height, width)) as writer:
        writer.write(frames)


class _AviWriter:
    """OpenCV's MJPG AVI writer as a context manager; ``write`` takes uint8 RGB frames ``[T, H, W, 3]``.
    ``size`` is the side of square frames or ``(height, width)``."""

    def __init__(self, path, fps, size):
        import cv2

        height, width = (size, size) if np.isscalar(size) else size
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (int(width), int(height)))
        if not self._writer.isOpened():
            raise OSError(f"cv2 cannot open {path} for writing an MJPG AVI")

    def write(self, frames):
        for frame in frames:
            self._writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV wants BGR

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._writer.release()


def make_demo_dataset(output, num_train=2000, num_val=200, seed=0, num_frames=8, size=32, fps=30,
                      progress=False):
    """Write the demo dataset under ``output`` and return the paths of its list files.

    Layout: ``train/000000.avi`` ... and ``val/...`` (MJPG AVI), ``train.list`` and ``val.list``
    (``relative/path.avi label``, relative to ``output``, so configs use ``data_prefix: output``) and
    ``label_list.txt`` (``id name``). Labels cycle 0, 1, 2, 3 so every class has the same count (+-1).

    Args:
        output: folder to write into (created).
        num_train, num_val: clip counts.
        seed: generator seed; the same arguments give the same clips.
        num_frames, size, fps: frames per clip, frame side in pixels, frame rate stored in the AVI.
        progress: show a tqdm bar.
    Returns:
        dict with ``train``, ``val`` and ``label_list`` paths.
    """
    os.makedirs(output, exist_ok=True)
    jobs = []
    for split, count in (("train", num_train), ("val", num_val)):
        os.makedirs(os.path.join(output, split), exist_ok=True)
        jobs += [(split, index) for index in range(count)]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="demo clips", unit="clip")
    lines = {"train": [], "val": []}
    for split, index in jobs:
        label = index % len(CLASS_NAMES)
        rng = np.random.default_rng([seed, _SPLIT_IDS[split], index])
        relative = f"{split}/{index:06d}.avi"
        write_avi(os.path.join(output, relative), make_clip(rng, label, num_frames, size), fps)
        lines[split].append((relative, label))
    paths = {split: write_list_file(os.path.join(output, f"{split}.list"), items) for split, items in lines.items()}
    paths["label_list"] = write_label_list(os.path.join(output, "label_list.txt"), dict(enumerate(CLASS_NAMES)))
    settings = _settings(num_train, num_val, seed, num_frames, size, fps)
    with open(os.path.join(output, MANIFEST), "w", encoding="utf-8") as f:  # last: marks a complete dataset
        json.dump(settings, f, indent=1)
    get_logger("loader").info("demo dataset: %d train + %d val clips in %s", num_train, num_val, output)
    return paths


def _settings(num_train, num_val, seed, num_frames, size, fps):
    return {"generator_version": GENERATOR_VERSION, "num_train": num_train, "num_val": num_val, "seed": seed,
            "num_frames": num_frames, "size": size, "fps": fps}


def demo_dataset_is_current(output, num_train=2000, num_val=200, seed=0, num_frames=8, size=32, fps=30):
    """True if ``output`` holds a complete demo dataset made by this generator with these settings."""
    try:
        with open(os.path.join(output, MANIFEST), encoding="utf-8") as f:
            return json.load(f) == _settings(num_train, num_val, seed, num_frames, size, fps)
    except (OSError, ValueError):
        return False
