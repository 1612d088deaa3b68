"""What a failed request gets: an HTTP status and one line of JSON, ``{"error": "..."}``.

Two kinds, both members of the project's error groups (:mod:`paddlevideo.common.errors`):

- :class:`ClientError` (an :class:`InputError`): the request itself must change (4xx): no file, an empty,
  too large, non-video or broken upload, a wrong API key, an unknown job;
- :class:`Unavailable` (a :class:`RunError`): the same request may succeed later (503 with ``Retry-After``:
  the queue is full, the model is still loading, the service is stopping; 504: no answer in time).
"""

import math

from ..common.errors import InputError, RunError, first_line


class ClientError(InputError):
    """A request the client must change; ``status`` is the 4xx code, the message one line naming what."""

    def __init__(self, message, status=400, headers=None):
        super().__init__(message)
        self.status = int(status)
        self.headers = dict(headers or {})


class Unavailable(RunError):
    """The service cannot answer now; ``status`` 503 (with ``Retry-After`` seconds) or 504 (timed out)."""

    def __init__(self, message, status=503, retry_after=None):
        super().__init__(message)
        self.status = int(status)
        self.headers = {}
        if retry_after is not None:
            self.headers["Retry-After"] = str(max(1, int(math.ceil(retry_after))))


# Exceptions of the video decoders -> status: the file is no video we can open (415), or a video whose
# frames cannot be decoded, e.g. truncated (422). Names, so the serving layer needs no decoder import.
VIDEO_ERROR_STATUS = {"VideoOpenError": 415, "VideoDecodeError": 422}


def hide_path(message, path, filename):
    """``message`` with the server's temporary ``path`` replaced by the client's ``filename`` and its folder
    by ``<upload folder>``: what a client reads names its own file, never the server's disk."""
    import os

    if message.startswith(path + ": "):  # the decoders start with the file name
        message = message[len(path) + 2:]
    return message.replace(path, filename).replace(os.path.dirname(path), "<upload folder>")


def decode_failure(err, filename, path):
    """The :class:`ClientError` for an upload the test pipeline could not turn into a clip (415: not a video
    that opens; 422: its frames cannot be decoded), naming the client's file name (see :func:`hide_path`)."""
    status = next((code for cls in type(err).__mro__ for name, code in VIDEO_ERROR_STATUS.items()
                   if cls.__name__ == name), 422)
    what = "is not a video that can be opened" if status == 415 else "cannot be decoded into a clip"
    return ClientError(f"upload '{filename}' {what} ({hide_path(first_line(err), path, filename)})", status)
