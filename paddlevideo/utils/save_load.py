"""Checkpoint file I/O. Every write is atomic: a temporary file in the same folder, then rename,
so a run killed mid-write leaves the previous file intact.

A temporary file is named ``<final name>.<random>.tmp`` (see :data:`TMP_PATTERN`); one left behind by a
killed process is never mistaken for a checkpoint, and ``tasks.run_files`` removes it at the next start.
Files get the mode a normally created file would get (``0666`` minus the umask), not ``mkstemp``'s 0600.
"""

import errno
import os
import re
import tempfile

from .errors import InputError, OutputError

# "<name>.<8 random chars>.tmp", the names tempfile.mkstemp gives in save()
TMP_PATTERN = re.compile(r"^.+\.[A-Za-z0-9_]{8}\.tmp$")
# ".<name>.<pid>.partial<ext>", the names visualization.files.atomic_output gives (pictures and videos keep
# their extension: matplotlib and the video writers choose the format by it)
PARTIAL_PATTERN = re.compile(r"^\..+\.\d+\.partial(\.\w+)?$")


def partial_name(path):
    """The temporary name :data:`PARTIAL_PATTERN` describes for ``path`` (same folder, same extension)."""
    folder, name = os.path.split(os.fspath(path))
    base, ext = os.path.splitext(name)
    return os.path.join(folder, f".{base}.{os.getpid()}.partial{ext}")


def is_leftover_tmp(name):
    """True for the file names of unfinished atomic writes (checkpoints and pictures alike)."""
    return bool(TMP_PATTERN.match(name) or PARTIAL_PATTERN.match(name))


class CheckpointWriteError(OutputError, OSError):
    """A checkpoint (or other run file) could not be written: full disk, read-only folder, no permission."""


class CheckpointReadError(InputError):
    """A checkpoint file is truncated or not a Paddle checkpoint."""


class CheckpointNotFoundError(CheckpointReadError, FileNotFoundError):
    """A checkpoint file does not exist."""


def current_umask():
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it: set and restore at once
    os.umask(mask)
    return mask


def describe_os_error(err):
    """``'No space left on device'`` etc.: the strerror of an OSError (its class name if it has none)."""
    return err.strerror or type(err).__name__ if isinstance(err, OSError) else str(err)


def _write_error(path, err):
    reason = describe_os_error(err)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        advice = "free some space (or raise the file-size limit) or set output_dir to another disk"
    elif isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        advice = "make the folder writable or set output_dir to a writable folder"
    else:
        advice = "check the folder"
    return CheckpointWriteError(f"cannot write '{path}' ({reason}); {advice}; any earlier file of that name is "
                                "left as it was")


def atomic_write(path, write):
    """Call ``write(tmp_path)`` then move ``tmp_path`` onto ``path`` atomically.

    The temporary file lives in the target folder (so the rename never crosses file systems), is flushed
    to disk before the rename and removed on any failure, interrupts included.

    Raises:
        CheckpointWriteError: the folder or file cannot be written (disk full, read-only, a file in the way).
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise _write_error(path, err) from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def save(obj, path):
    """Write ``obj`` (a state dict or any picklable paddle object) to ``path`` atomically."""
    import paddle

    atomic_write(path, lambda tmp: paddle.save(obj, tmp))


def load(path):
    """Read a file written by :func:`save` or ``paddle.save``.

    Raises:
        CheckpointNotFoundError: no such file. CheckpointReadError: it cannot be read (both name the file).
    """
    import paddle

    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f"checkpoint '{path}' not found")
    try:
        return paddle.load(path)
    except Exception as err:  # paddle raises several types for truncated or foreign files
        first = str(err).strip().splitlines()
        raise CheckpointReadError(f"checkpoint '{path}' could not be read ({type(err).__name__}: "
                                  f"{first[0] if first else ''}); is it a complete .pdparams/.pdopt file?") from err
