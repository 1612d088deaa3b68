"""Output files of the visualisation package: written whole or not at all, and their one error type."""

import contextlib
import os

from ..utils.errors import InputError
from ..utils.save_load import partial_name


class VisualizationError(InputError):
    """Data that cannot be drawn or reported (wrong shapes, NaN scores, an unusable view); one line naming it."""


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path in ``path``'s folder (created) with the same extension; on success it is
    renamed to ``path``, on any failure removed, so a reader never sees a half-written file. The file is
    created with the user's umask (a plain ``open``)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = partial_name(os.path.join(folder, os.path.basename(path)))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return path
