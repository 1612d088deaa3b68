"""Which files are videos: the extensions every tool accepts, and the videos of a file-or-folder argument."""

import os

from ..utils.errors import InputError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov")


def list_videos(input_path):
    """``input_path`` (a file, or a folder scanned non-recursively for :data:`VIDEO_EXTENSIONS`) -> sorted paths.

    Raises:
        InputError: the path does not exist, or the folder holds no video.
    """
    if os.path.isfile(input_path):
        return [input_path]
    if not os.path.isdir(input_path):
        raise InputError(f"input '{input_path}' not found; pass a video file or a folder of videos")
    videos = sorted(os.path.join(input_path, name) for name in os.listdir(input_path)
                    if name.lower().endswith(VIDEO_EXTENSIONS) and os.path.isfile(os.path.join(input_path, name)))
    if not videos:
        raise InputError(f"folder '{input_path}' has no video ({', '.join(VIDEO_EXTENSIONS)})")
    return videos
