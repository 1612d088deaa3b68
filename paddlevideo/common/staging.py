"""Multi-file outputs written whole: every file goes into a hidden staging folder first, and is moved into place
only when all of them are complete.

Two shapes of output:

- :func:`staged_folder`: the output is a folder of its own (one video's attention maps, a test report). The
  files are written in a hidden sibling folder ``.<name>.staging-<pid>-<random>``, which then takes the final
  folder's place: exchanged with an existing folder in one step where the system can (Linux ``renameat2``),
  else the old folder is renamed aside first. A reader sees the old complete folder or the new complete one,
  never a mix of both nor a partial folder under the final name. An existing folder is only replaced when it
  holds nothing but files this output writes (``names``): a user's folder of the same name is refused.
- :func:`staged_files`: the outputs are files in a shared folder (an exported model's program, weights, ONNX
  file and provenance record; an int8 model's ``.xml`` / ``.bin``). They are written in a hidden folder
  ``.<name>.staging-<pid>-<random>`` inside that folder and moved in by :meth:`StagedFiles.commit`, in the order
  the caller gives (files in a shared folder cannot be swapped as one: the caller's provenance record, moved
  first, is what tells a reader whether the set it finds is whole, see ``deploy/provenance.py``).

A run stopped at any moment (an error, Ctrl-C, SIGKILL) leaves no partial output under a final name; a killed
one may leave a hidden ``.<name>.staging-*`` or ``.<name>.replaced-*`` folder, which the next staging of that
name in the same folder removes (when the process that made it is gone).
"""

import contextlib
import ctypes
import errno
import os
import re
import shutil
import tempfile

from .errors import OutputError, UserError
from .files import cannot_write, current_umask, is_leftover_tmp

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _hidden(folder, name, kind):
    return tempfile.mkdtemp(prefix=f".{name}.{kind}-{os.getpid()}-", dir=folder)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_leftovers(folder, name):
    """Remove hidden ``.<name>.staging-<pid>-*`` / ``.<name>.replaced-<pid>-*`` folders in ``folder`` left by a
    process that no longer runs (a killed run); returns the paths removed."""
    pattern = re.compile(r"^\." + re.escape(name) + r"\.(?:staging|replaced)-(\d+)-[^/]+$")
    removed = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            path = os.path.join(folder, entry)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _exchange(a, b):
    """Swap the paths ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system
    cannot (then nothing changed)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # an old kernel or a file system without exchange: rename aside instead
    raise OSError(code, os.strerror(code), a, None, b)


def check_replaceable(final, names, flag="-o"):
    """Raise :class:`OutputError` unless ``final`` is absent or a folder holding only ``names`` (files an earlier
    run of the same output wrote, and temporary files of an unfinished write), so that replacing it destroys
    nothing else."""
    if not os.path.lexists(final):
        return
    if not os.path.isdir(final) or os.path.islink(final):
        raise OutputError(f"{flag}: '{final}' exists and is not a folder this tool wrote; move it away or write "
                          "to another folder")
    foreign = sorted(name for name in set(os.listdir(final)) - set(names) if not is_leftover_tmp(name))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise OutputError(f"{flag}: '{final}' already holds files this tool does not write ({shown}); it is not "
                          "replaced: move them away or write to another folder")


@contextlib.contextmanager
def staged_folder(final, names, flag="-o"):
    """Write the folder ``final`` whole: yields a hidden staging folder to write the files ``names`` into; when the
    block ends without an exception, the staging folder takes ``final``'s place (see the module docstring). On
    an exception, nothing under ``final`` changes and the staging folder is removed.

    Raises:
        OutputError: ``final`` exists and holds files other than ``names`` (checked before and after the block),
            or it cannot be replaced (the message names it and why).
    """
    final = os.path.abspath(os.fspath(final))
    parent, base = os.path.split(final)
    check_replaceable(final, names, flag)
    os.makedirs(parent, exist_ok=True)
    remove_leftovers(parent, base)
    staging = _hidden(parent, base, "staging")
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 would surprise: the usual folder mode
        yield staging
        check_replaceable(final, names, flag)
        _move_folder_in(staging, final, parent, base)
    finally:
        if os.path.lexists(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _move_folder_in(staging, final, parent, base):
    if not os.path.lexists(final):
        os.rename(staging, final)
        return
    if _exchange(staging, final):
        shutil.rmtree(staging, ignore_errors=True)  # the old folder, now under the staging name
        return
    aside = _hidden(parent, base, "replaced")
    os.rmdir(aside)
    os.rename(final, aside)
    try:
        os.rename(staging, final)
    except BaseException:
        os.rename(aside, final)  # put the old folder back
        raise
    shutil.rmtree(aside, ignore_errors=True)


class StagedFiles:
    """A hidden staging folder inside ``folder`` for the files of one output named ``name``; see
    :func:`staged_files`."""

    def __init__(self, folder, name):
        self.folder = os.fspath(folder)
        remove_leftovers(self.folder, name)
        self.dir = _hidden(self.folder, name, "staging")

    def path(self, filename):
        """Where to write ``filename`` now (inside the staging folder)."""
        return os.path.join(self.dir, filename)

    def write(self, filename, write):
        """Call ``write(path)`` for the staged file ``filename``; a file-system error (a full disk, a file-size
        limit) becomes one :class:`OutputError` naming the file's final path. Returns the staged path."""
        path = self.path(filename)
        try:
            write(path)
        except OSError as err:
            if isinstance(err, UserError):  # it already names its file
                raise
            raise cannot_write(os.path.join(self.folder, filename), err,
                               "nothing of this output was written there") from err
        return path

    def commit(self, order=()):
        """Move every staged file into the folder: the names in ``order`` first, in that order, then the others
        (sorted). Returns ``{file name: final path}``."""
        names = os.listdir(self.dir)
        ordered = [n for n in order if n in names] + sorted(n for n in names if n not in order)
        moved = {}
        for name in ordered:
            final = os.path.join(self.folder, name)
            os.replace(os.path.join(self.dir, name), final)
            moved[name] = final
        return moved


@contextlib.contextmanager
def staged_files(folder, name):
    """Yield a :class:`StagedFiles` for files written into ``folder`` (which must exist); its staging folder is
    removed when the block ends, with whatever :meth:`~StagedFiles.commit` did not move in."""
    stage = StagedFiles(folder, name)
    try:
        yield stage
    finally:
        shutil.rmtree(stage.dir, ignore_errors=True)

