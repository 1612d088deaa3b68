"""Datasets; importing this package registers them in ``DATASETS``."""

from .video import VideoDataset, read_list_file

__all__ = ["VideoDataset", "read_list_file"]
