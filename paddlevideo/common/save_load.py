"""Checkpoint file I/O. Every write is atomic (:func:`.files.atomic_file`: a temporary file in the same folder,
flushed to disk, then renamed), so a run killed mid-write leaves the previous file intact. Every read goes
through :func:`load`, which builds plain data only (:mod:`.safe_pickle`) unless the caller trusts the file.

A temporary file left behind by a killed process is never mistaken for a checkpoint (its name matches
:data:`.files.TMP_PATTERN`), and ``tasks.run_files`` removes it at the next start.
"""

import collections
import errno
import os

import numpy as np

from . import safe_pickle
from .errors import InputError, OutputError
from .files import describe_os_error, write_atomically
from .safe_pickle import UnsafePickleError  # noqa: F401  (raised by load; importable from here)


class CheckpointWriteError(OutputError, OSError):
    """A checkpoint (or other run file) could not be written: full disk, read-only folder, no permission."""


class CheckpointReadError(InputError):
    """A checkpoint file is truncated or not a Paddle checkpoint."""


class CheckpointNotFoundError(CheckpointReadError, FileNotFoundError):
    """A checkpoint file does not exist."""


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

    The temporary file lives in the target folder (created if needed, so the rename never crosses file
    systems), is flushed to disk before the rename and removed on any failure, interrupts included.

    Raises:
        CheckpointWriteError: the folder or file cannot be written (disk full, read-only, a file in the way).
    """
    write_atomically(path, write, make_folder=True, sync=True, error=_write_error)


def save(obj, path):
    """Write ``obj`` (a state dict or any picklable paddle object) to ``path`` atomically."""
    import paddle

    atomic_write(path, lambda tmp: paddle.save(obj, tmp))


# Paddle's layout inside a pickled state dict (paddle/framework/io.py, io_utils.py): a parameter larger than
# 2**30 bytes saved with protocol 2/3 is split into 1-D chunks '<key>@@.<i>' listed under this key ...
BIG_PARAM_INFO = "UnpackBigParamInfor@@"  # (sic: Paddle's spelling)
# ... and a state dict saved by paddle.save carries {structured key: parameter name} under this one
NAME_TABLE = "StructuredToParameterName@@"


def load(path, trust_pickle=False, return_numpy=False):
    """Read a ``.pdparams`` / ``.pdopt`` file as ``paddle.load`` does, without running code from it.

    The pickle is read by :mod:`.safe_pickle` (plain data and numeric numpy arrays only; anything else is
    refused before it is built), then Paddle's layout is applied as ``paddle.load`` applies it: split large
    parameters are joined, a state dict's arrays named in its name table become tensors with those names,
    ``(name, array)`` pairs of nested objects (optimizer states) become named tensors, other arrays tensors.

    Args:
        path: the file.
        trust_pickle: read it with ``paddle.load`` (full unpickling: runs whatever the file asks for). Only
            for files you trust; the command lines' ``--trust-pickle``.
        return_numpy: numpy arrays instead of tensors.

    Raises:
        CheckpointNotFoundError: no such file. UnsafePickleError: the file asks to run code or build objects
        a checkpoint never holds (the message names the file and the object). CheckpointReadError: it cannot
        be read (both name the file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f"checkpoint '{path}' not found")
    if trust_pickle:
        return _paddle_load(path, return_numpy)
    try:
        obj = safe_pickle.load(path)
    except safe_pickle.PickleReadError as err:
        raise CheckpointReadError(str(err)) from err
    try:
        return _as_paddle_loads(obj, return_numpy)
    except ValueError as err:
        raise CheckpointReadError(f"checkpoint '{path}' has a broken Paddle layout ({err}); is it a complete "
                                  ".pdparams/.pdopt file?") from err


def _paddle_load(path, return_numpy):
    """``paddle.load``: the one place a checkpoint is fully unpickled (``trust_pickle``)."""
    import paddle

    try:
        return paddle.load(path, return_numpy=return_numpy)
    except Exception as err:  # paddle raises several types for truncated or foreign files
        first = str(err).strip().splitlines()
        raise CheckpointReadError(f"checkpoint '{path}' could not be read ({type(err).__name__}: "
                                  f"{first[0] if first else ''}); is it a complete .pdparams/.pdopt file?") from err


def _join_big_params(state):
    """Join the chunks of parameters ``paddle.save`` split (``BIG_PARAM_INFO``), checked, in Paddle's order."""
    info = state.pop(BIG_PARAM_INFO)
    if not isinstance(info, dict):
        raise ValueError(f"{BIG_PARAM_INFO} is a {type(info).__name__}, not a dict")
    removes = []
    for key, entry in info.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("slices"), (list, tuple))
                and isinstance(entry.get("OriginShape"), (list, tuple))):
            raise ValueError(f"{BIG_PARAM_INFO}[{key!r}] lacks 'slices' / 'OriginShape'")
        parts = []
        for part in entry["slices"]:
            value = state.get(part) if isinstance(part, str) else None
            if not isinstance(value, np.ndarray) or value.ndim != 1:
                raise ValueError(f"chunk {part!r} of '{key}' is missing or not a 1-D array")
            parts.append(value)
        shape = tuple(entry["OriginShape"])
        if not all(isinstance(d, int) and d >= 0 for d in shape) or not parts:
            raise ValueError(f"'{key}' has shape {shape!r} and {len(parts)} chunks")
        if len({p.dtype for p in parts}) != 1 or sum(p.size for p in parts) != int(np.prod(shape, dtype=object)):
            raise ValueError(f"the chunks of '{key}' do not make its shape {shape}")
        state[key] = np.concatenate(parts).reshape(shape)
        removes += list(entry["slices"])
    for part in removes:
        state.pop(part)
    return state


def _as_paddle_loads(obj, return_numpy):
    """Apply to unpickled ``obj`` what ``paddle.load`` applies after unpickling (see :func:`load`)."""
    if isinstance(obj, dict):
        if BIG_PARAM_INFO in obj:
            obj = _join_big_params(obj)
        if NAME_TABLE in obj:
            table = obj.pop(NAME_TABLE)
            if not isinstance(table, dict):
                raise ValueError(f"{NAME_TABLE} is a {type(table).__name__}, not a dict")
            for key, name in table.items():
                if isinstance(obj.get(key), np.ndarray) and not return_numpy:
                    obj[key] = _tensor(obj[key], name)
            return obj
    if _contains(obj, _is_named_array):  # Paddle >= 2.1 saves a tensor of a nested object as (name, array)
        return _convert(obj, _is_named_array, lambda pair: pair[1] if return_numpy else _tensor(pair[1], pair[0]))
    return _convert(obj, lambda v: isinstance(v, np.ndarray), lambda a: a if return_numpy else _tensor(a))


def _tensor(array, name=None):
    import paddle

    tensor = paddle.to_tensor(array)
    if name:
        tensor.name = name
    return tensor


def _is_named_array(value):
    return type(value) is tuple and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], np.ndarray)


def _contains(obj, test):
    if test(obj):
        return True
    if type(obj) in (dict, collections.OrderedDict):
        return any(_contains(v, test) for v in obj.values())
    if type(obj) in (list, tuple):
        return any(_contains(v, test) for v in obj)
    return False


def _convert(obj, test, convert):
    if test(obj):
        return convert(obj)
    if type(obj) in (dict, collections.OrderedDict):
        for key in list(obj):
            obj[key] = _convert(obj[key], test, convert)
    elif type(obj) is list:
        obj[:] = [_convert(v, test, convert) for v in obj]
    elif type(obj) is tuple:
        obj = tuple(_convert(v, test, convert) for v in obj)
    return obj
