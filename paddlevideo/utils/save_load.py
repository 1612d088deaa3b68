"""Checkpoint file I/O. Every write is atomic: a temporary file in the same folder, then rename,
so a run killed mid-write leaves the previous file intact."""

import os
import tempfile


def save(obj, path):
    """Write ``obj`` (a state dict or any picklable paddle object) to ``path`` atomically."""
    import paddle

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        paddle.save(obj, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path):
    """Read a file written by :func:`save` or ``paddle.save``; a missing file is a clear error."""
    import paddle

    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint '{path}' not found")
    try:
        return paddle.load(path)
    except Exception as err:  # paddle raises several types for truncated or foreign files
        raise ValueError(f"checkpoint '{path}' could not be read ({type(err).__name__}: {err}); "
                         "is it a complete .pdparams/.pdopt file?") from err
