"""Which files are videos: the one list of extensions every tool accepts, and the videos of a file-or-folder
argument (``tools/predict.py``, ``tools/visualize_attention.py``, ``tools/extract_features.py``,
``tools/compare_precisions.py``)."""

import os

from ..common.errors import InputError
from ..common.logger import get_logger

# Containers FFmpeg-based readers (decord, PyAV, OpenCV) open; compared case-insensitively.
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts",
                    ".mts", ".m2ts", ".3gp", ".ogv")
SHOW_SKIPPED = 5  # entries named in the "skipped" warning


def is_video_name(name):
    """Whether the file name ``name`` has one of :data:`VIDEO_EXTENSIONS` (any case)."""
    return os.fspath(name).lower().endswith(VIDEO_EXTENSIONS)


def list_videos(input_path, recursive=False, flag="--input_file"):
    """``input_path`` (a file, or a folder) -> the sorted video paths.

    A folder is scanned for :data:`VIDEO_EXTENSIONS` (its sub-folders too with ``recursive``). Nothing is
    skipped without a word: a symbolic link whose target is gone is listed like the video it names (the tool then
    reports it as unreadable, "broken symbolic link", with the others); files of other types and, without
    ``recursive``, sub-folders are named in one warning line.

    Raises:
        InputError: the path does not exist, or the folder holds no video (``flag`` names the argument).
    """
    input_path = os.fspath(input_path)
    if os.path.isfile(input_path):
        return [input_path]
    if not os.path.isdir(input_path):
        raise InputError(f"{flag} '{input_path}' not found; pass a video file or a folder of videos")
    videos, others, folders = [], [], []
    if recursive:
        for root, subfolders, names in os.walk(input_path):
            subfolders.sort()
            for name in names:
                (videos if is_video_name(name) else others).append(os.path.join(root, name))
    else:
        for name in os.listdir(input_path):
            path = os.path.join(input_path, name)
            if os.path.isdir(path):
                folders.append(path)
            else:
                (videos if is_video_name(name) else others).append(path)
    if not videos:
        raise InputError(f"{flag}: folder '{input_path}' has no video ({', '.join(VIDEO_EXTENSIONS)})")
    skipped = [f"{os.path.basename(p)} (not a video)" for p in sorted(others)]
    skipped += [f"{os.path.basename(p)}/ (a folder: not searched)" for p in sorted(folders)]
    if skipped:
        get_logger().warning("%s: %d entr%s of '%s' skipped: %s%s", flag, len(skipped),
                             "y" if len(skipped) == 1 else "ies", input_path, ", ".join(skipped[:SHOW_SKIPPED]),
                             " ..." if len(skipped) > SHOW_SKIPPED else "")
    return sorted(videos)
