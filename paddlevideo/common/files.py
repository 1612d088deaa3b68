"""Files the project writes, and how a file-system error is worded: the one home of both.

- Writing whole or not at all: :func:`atomic_file` is the one primitive (a temporary file beside the target,
  renamed onto it on success, removed on any failure, interrupts included); :func:`write_atomically` wraps it
  for a ``write(tmp_path)`` callback, and ``save_load.atomic_write`` (checkpoints) and
  ``visualization.files.atomic_output`` (pictures, videos) call it with their own options.
- A temporary file is named ``<final name>.<random>.tmp`` (:data:`TMP_PATTERN`), or, where the writer picks
  the format by the extension (matplotlib, the video writers), ``.<name>.<pid>.partial<ext>``
  (:data:`PARTIAL_PATTERN`). A file left behind by a killed process is never mistaken for an output, and
  :func:`is_leftover_tmp` lets ``tasks.run_files`` and ``staging`` tell it from the user's files.
- Files get the mode a normally created file would get (``0666`` minus the umask, read once here by
  :func:`current_umask`), not ``mkstemp``'s 0600.
- Wording: :func:`os_error_reason` (what happened, what to do) and :func:`os_error_message` (one line with the
  path) for the errnos a user can fix; :func:`describe_os_error` for the plain ``strerror``.
- Output folders and names: :func:`prepare_output_dir` (created and tried by a real write before any work),
  :func:`output_name` (a name that stays inside the output folder).
"""

import contextlib
import errno
import os
import re
import tempfile

from .errors import OutputError, UserError

# ------------------------------------------------------------------ wording of file-system errors

# errno -> (what happened, what to do), for the OSErrors a user can fix.
_OS_ERRORS = {
    errno.ENOSPC: ("no space left on the device", "free some space or write to another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or write to another disk"),
    errno.EFBIG: ("file too large for this file system or the file-size limit",
                  "raise the limit (ulimit -f) or write to another disk"),
    errno.EROFS: ("read-only file system", "write to a writable folder instead"),
    errno.EACCES: ("permission denied", "fix its permissions or use another path"),
    errno.EPERM: ("operation not permitted", "fix its permissions or use another path"),
    errno.EISDIR: ("is a folder, not a file", "give a file path"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "check the path"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.EEXIST: ("already exists", "remove it or use another path"),
    errno.ENAMETOOLONG: ("file name too long", "use a shorter path"),
    errno.ENOTEMPTY: ("folder is not empty", "empty it or use another path"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) or use fewer loader workers"),
}


def os_error_reason(err):
    """``(what happened, what to do)`` for an ``OSError``, e.g. ``("read-only file system", "write to a
    writable folder instead")``; unknown errnos give their ``strerror`` and a generic advice."""
    if isinstance(err, OSError) and err.errno in _OS_ERRORS:
        return _OS_ERRORS[err.errno]
    return (getattr(err, "strerror", None) or str(err) or type(err).__name__), "check the path and the disk"


def os_error_message(err):
    """One line for an ``OSError``: ``'<path>': <what>; <what to do>``, or ``None`` for an errno this
    module does not explain (the command-line wrapper then treats the error as a bug)."""
    if not isinstance(err, OSError) or err.errno not in _OS_ERRORS:
        return None
    what, advice = _OS_ERRORS[err.errno]
    paths = [p for p in (err.filename, getattr(err, "filename2", None)) if p is not None]
    if err.errno == errno.EEXIST and paths and os.path.isfile(paths[0]):  # os.makedirs on a file's path
        what, advice = "is a file, where a folder is needed", "remove the file or give another folder"
    if not paths:
        return f"{what}; {advice}"
    where = " -> ".join(f"'{os.fsdecode(p)}'" for p in paths)
    return f"{where}: {what}; {advice}"


def describe_os_error(err):
    """``'No space left on device'`` etc.: the strerror of an OSError (its class name if it has none)."""
    return err.strerror or type(err).__name__ if isinstance(err, OSError) else str(err)


def cannot_write(path, err, outcome):
    """The :class:`OutputError` for a write of ``path`` that failed with ``err``: ``cannot write '<path>'
    (<what>); <what to do>; <outcome>``, where ``outcome`` says what was left (the name is needed because a
    write error carries none: ENOSPC, EFBIG, EDQUOT)."""
    what, advice = os_error_reason(err)
    return OutputError(f"cannot write '{path}' ({what}); {advice}; {outcome}")


# ------------------------------------------------------------------ temporary files and their names

# "<name>.<8 random chars>.tmp", the names tempfile.mkstemp gives in atomic_file
TMP_PATTERN = re.compile(r"^.+\.[A-Za-z0-9_]{8}\.tmp$")
# ".<name>.<pid>.partial<ext>", the names atomic_file(keep_extension=True) gives (pictures and videos keep their
# extension: matplotlib and the video writers choose the format by it)
PARTIAL_PATTERN = re.compile(r"^\..+\.\d+\.partial(\.\w+)?$")


def partial_name(path):
    """The temporary name :data:`PARTIAL_PATTERN` describes for ``path`` (same folder, same extension)."""
    folder, name = os.path.split(os.fspath(path))
    base, ext = os.path.splitext(name)
    return os.path.join(folder, f".{base}.{os.getpid()}.partial{ext}")


def is_leftover_tmp(name):
    """True for the file names of unfinished atomic writes (checkpoints and pictures alike)."""
    return bool(TMP_PATTERN.match(name) or PARTIAL_PATTERN.match(name))


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


@contextlib.contextmanager
def atomic_file(path, keep_extension=False, make_folder=False, sync=False):
    """Yield a temporary path beside ``path``; when the block ends without an error the file is renamed onto
    ``path`` in one step, on any failure (interrupts included) it is removed, so a reader never sees a
    half-written file under the final name: a stopped write leaves the previous file, or none.

    Args:
        keep_extension: name the temporary file ``.<name>.<pid>.partial<ext>`` and let the writer create it
            (for writers that choose the format by the extension; the file gets the umask's mode from its
            own ``open``); otherwise ``<name>.<random>.tmp`` is created now and given ``0666`` minus the umask.
        make_folder: create ``path``'s folder first.
        sync: flush the file to disk before the rename (a checkpoint survives a power cut).

    OSErrors pass through unchanged: each caller words them for its own output.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        if make_folder:
            os.makedirs(folder, exist_ok=True)
        if keep_extension:
            tmp = partial_name(os.path.join(folder, os.path.basename(path)))
        else:
            handle, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp")
            os.close(handle)
        yield tmp
        if sync:
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
        if not keep_extension:
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600 would surprise: give the usual mode
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):  # not created yet, or already gone: the first error is the one
                os.remove(tmp)


def write_atomically(path, write, make_folder=False, sync=False, error=None):
    """Call ``write(tmp_path)`` inside :func:`atomic_file` (``make_folder``, ``sync`` as there). Returns ``path``.

    A file-system error becomes ``error(path, err)`` (default: an :class:`OutputError` ``cannot write '<path>'
    (<what>); <what to do>; any earlier file of that name is left as it was``); a :class:`UserError` passes
    through, as it already names its file.
    """
    try:
        with atomic_file(path, make_folder=make_folder, sync=sync) as tmp:
            write(tmp)
    except OSError as err:
        if isinstance(err, UserError):
            raise
        raise (error or _earlier_file_kept)(path, err) from err
    return path


def _earlier_file_kept(path, err):
    return cannot_write(path, err, "any earlier file of that name is left as it was")


# ------------------------------------------------------------------ output folders and names

_CONTROL_CHARACTERS = str.maketrans({c: "_" for c in [*map(chr, range(32)), "\x7f"]})


def output_name(input_path):
    """The name a tool gives what it writes for ``input_path`` inside its output folder: the input's base name
    only (``../../x.mp4`` -> ``x.mp4``), newlines and other control characters as ``_``, and ``.`` / ``..``
    (the stem of ``...mp4``) prefixed with ``_`` so the name can never point at the folder or its parent."""
    name = os.path.basename(os.fspath(input_path).rstrip("/" + os.sep)).translate(_CONTROL_CHARACTERS)
    return "_" + name if name in ("", ".", "..") else name


def prepare_output_dir(path, flag="--output", error=OutputError):
    """Create the output folder ``path`` (named by ``flag``: the command-line flag or config key the user set)
    and check that a file can be written in it, before any work starts; raises ``error`` (a :class:`UserError`,
    default :class:`OutputError`) naming the path and the reason otherwise."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise error(f"{flag} '{path}' is a file, not a folder; give a folder path")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # permissions, read-only mounts, quotas: try for real
            pass
    except OSError as err:
        what, advice = os_error_reason(err)
        raise error(f"{flag} '{path}' cannot be created or written ({what}); {advice}") from err
    return path
