"""The deployment side's name for :class:`~paddlevideo.utils.errors.InputError`: a model file or video that cannot
be predicted (missing, not a video, unreadable model); one line naming the file."""

from ..utils.errors import InputError

PredictError = InputError
