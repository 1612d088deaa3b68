"""Output files of the visualisation package: written whole or not at all, and their one error type."""

from ..common.errors import InputError
from ..common.files import atomic_file


class VisualizationError(InputError):
    """Data that cannot be drawn or reported (wrong shapes, NaN scores, an unusable view); one line naming it."""


def atomic_output(path):
    """Yield a temporary path in ``path``'s folder (created) with the same extension; on success it is
    renamed to ``path``, on any failure removed, so a reader never sees a half-written file. The file is
    created with the user's umask (a plain ``open``). The extension is kept because matplotlib and the video
    writers choose the format by it (:func:`~paddlevideo.common.files.atomic_file`, ``keep_extension``)."""
    return atomic_file(path, keep_extension=True, make_folder=True)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return path
