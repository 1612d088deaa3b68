"""A tool never writes over its input: the one check of "is this output one of my inputs".

Every tool that writes files calls :func:`refuse_overwriting_inputs` with what it is about to write and what it
reads, before any work. An output overwrites an input when

- it is the same file (the same path after resolving links and ``..``, or a hard link to it);
- the tool replaces the output as a whole folder (``replaces_folder``) and an input lies inside it;
- it would replace an existing file inside an input that is a folder (a model folder read as a whole, e.g. a
  transformers checkpoint folder).
"""

import os

from .errors import OutputError


def _real(path):
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def same_file(a, b):
    """Whether the paths ``a`` and ``b`` name the same file (links and ``..`` resolved; hard links too)."""
    if _real(a) == _real(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def is_inside(path, folder):
    """Whether ``path`` lies inside ``folder`` (at any depth; links resolved)."""
    folder = _real(folder)
    return _real(path).startswith(folder.rstrip(os.sep) + os.sep)


def overwritten_input(output, inputs, replaces_folder=False):
    """The ``(flag, path)`` of the input that writing ``output`` would destroy, or None.

    Args:
        output: a file (or, with ``replaces_folder``, a folder) the tool writes.
        inputs: ``(flag, path)`` pairs (paths may be None: skipped; a folder stands for every file in it).
        replaces_folder: the tool replaces the folder ``output`` with all it holds.
    """
    for flag, path in inputs:
        if path is None:
            continue
        if same_file(output, path):
            return flag, path
        if replaces_folder and is_inside(path, output):
            return flag, path
        if os.path.isdir(path) and is_inside(output, path) and os.path.lexists(output):
            return flag, path
    return None


def refuse_overwriting_inputs(outputs, inputs, replaces_folder=False, error=OutputError):
    """Raise ``error`` (default :class:`OutputError`) naming both when one of ``outputs`` (``(flag, path)`` pairs)
    would overwrite one of ``inputs`` (see :func:`overwritten_input`); nothing is written before this check."""
    inputs = [(flag, path) for flag, path in inputs if path is not None]
    for out_flag, output in outputs:
        if output is None:
            continue
        hit = overwritten_input(output, inputs, replaces_folder)
        if hit is None:
            continue
        in_flag, path = hit
        if same_file(output, path):
            what = f"is the input {in_flag} '{path}'"
        elif replaces_folder and is_inside(path, output):
            what = f"would replace a folder that holds the input {in_flag} '{path}'"
        else:
            what = f"would replace a file inside the input {in_flag} '{path}'"
        raise error(f"{out_flag} '{output}' {what}; a tool never writes over its input: write to another path")
