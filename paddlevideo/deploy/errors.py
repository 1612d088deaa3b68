"""The deployment side's name for :class:`~paddlevideo.common.errors.InputError`: a model file or video that cannot
be predicted (missing, not a video, unreadable model); one line naming the file."""

from ..common.errors import InputError

PredictError = InputError
