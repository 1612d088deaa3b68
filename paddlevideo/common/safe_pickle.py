"""A restricted unpickler for checkpoints: it builds plain data and nothing else.

``.pdparams`` / ``.pdopt`` files are Python pickles. A pickle is a small program: it names Python
objects (``GLOBAL`` / ``STACK_GLOBAL``) and calls them (``REDUCE``), then hands state to what it built
(``BUILD`` -> ``__setstate__``). ``pickle.load`` (and so ``paddle.load``) runs whatever a file names,
``os.system`` included. This module runs a file only as far as the data ``paddle.save`` writes needs:

- dicts, ``collections.OrderedDict``, lists, tuples, str, bytes, int, float, bool, None;
- numpy arrays and scalars of numeric dtypes (bool, int, uint, float, complex), as numpy pickles them:
  ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct`` (numpy 1 / 2), then the
  array's state; ``numpy.dtype`` and its state; ``numpy.core.multiarray.scalar``;
- the helpers Python and Paddle put around those: ``_codecs.encode(text, 'latin1')`` and ``bytes()``
  (bytes in protocol 2 pickles), ``tuple(...)`` (a tensor in a nested object is saved as
  ``tuple((name, array))``), ``eval('data', {'data': array})`` (Paddle's form of a ``DenseTensor``).

The allow-list is of (callable, argument shape) pairs: each name above resolves to a checker that
validates its arguments and then builds the value itself (``eval`` is never called: its one allowed
form just returns the array). Any other name is refused when the pickle *names* it, before anything is
called; a call with arguments of another shape, an object dtype, a structured dtype, a second state,
state handed to anything but an array or a dtype, a structure containing itself: refused too, before
it is built. Every allowed callable returns a placeholder that takes no state it has not checked; the
placeholders are replaced by the real values after the pickle ends (:func:`load`), and that pass
refuses any object of another type that found its way into the result.

Paddle's layouts on top of the pickle (split large parameters, tensor names) are handled by
:func:`paddlevideo.common.save_load.load`, the one public entry point.
"""

import collections
import os
import pickle

import numpy as np

from .errors import InputError

# numpy's own builders, taken from objects rather than module paths (numpy 1 has them in numpy.core,
# numpy 2 in numpy._core, with a deprecation shim under the old name)
_NP_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_NP_SCALAR = np.float32(0).__reduce__()[0]

# dtype codes numpy writes in ``numpy.dtype(code, align, copy)`` for the numeric types Paddle saves
_DTYPE_CODES = frozenset(["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"])
_BYTE_ORDERS = frozenset("<>|=")
MAX_DEPTH = 64  # nesting of containers; Paddle's deepest (a project .pdopt) is 4
MAX_NDIM = 32


class UnsafePickleError(InputError):
    """A checkpoint asks to build something other than plain data; nothing of it was run."""


class PickleReadError(InputError):
    """A file is not a complete pickle (truncated, corrupt, or another format)."""


class _Refused(Exception):
    """Raised inside the unpickler; ``what`` completes "it asks to ..." / "it holds ..."."""

    def __init__(self, what):
        super().__init__(what)
        self.what = what


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_args(args):
    return "(" + ", ".join(_short(a, 60) for a in args) + ")"


# ---------------------------------------------------------------- placeholders

class _Placeholder:
    """Base of what the allowed callables return: refuses state unless a subclass checks it."""

    __slots__ = ()
    label = "an object"

    def __setstate__(self, state):
        raise _Refused(f"hand state to {self.label} ({_short(state)})")

    def __reduce__(self):  # never pickled again; say so instead of leaking internals
        raise TypeError(f"{type(self).__name__} is internal to safe_pickle")

    def value(self):
        raise NotImplementedError


class _PendingDtype(_Placeholder):
    """``numpy.dtype(code, align, copy)``; its state may only set the byte order."""

    __slots__ = ("dtype", "built")
    label = "a numpy dtype"

    def __init__(self, code):
        self.dtype = np.dtype(code)
        self.built = False

    def __setstate__(self, state):
        # numpy writes (3, byteorder, None, None, None, -1, -1, 0); version 4 adds metadata (None)
        if self.built:
            raise _Refused(f"set the state of a numpy dtype twice ({_short(state)})")
        if not (type(state) is tuple and len(state) in (8, 9) and state[0] in (3, 4)):
            raise _Refused(f"give a numpy dtype a state numpy never writes ({_short(state)})")
        order, subarray, names, fields, elsize, alignment, flags = state[1:8]
        metadata = state[8] if len(state) == 9 else None
        if (order not in _BYTE_ORDERS or subarray is not None or names is not None or fields is not None
                or metadata not in (None, {}) or elsize not in (-1, self.dtype.itemsize)
                or alignment not in (-1, self.dtype.alignment) or type(flags) is not int or flags != 0):
            raise _Refused(f"give a numpy dtype the state of a structured, object or flagged dtype "
                           f"({_short(state)}); checkpoints hold numeric dtypes only")
        if order in "<>" and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(order)
        self.built = True

    def value(self):
        return self.dtype


class _PendingArray(_Placeholder):
    """``_reconstruct(ndarray, (0,), b'b')``; takes exactly one state: (1, shape, dtype, fortran, bytes)."""

    __slots__ = ("array",)
    label = "a numpy array"

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if self.array is not None:
            raise _Refused("set the state of a numpy array twice")
        if not (type(state) is tuple and len(state) == 5):
            raise _Refused(f"give a numpy array a state numpy never writes ({_short(state)})")
        version, shape, dtype, fortran, raw = state
        if type(dtype) is not _PendingDtype:
            raise _Refused(f"build a numpy array of dtype {_short(dtype)}; checkpoints hold numeric dtypes only")
        if version != 1 or type(version) is not int:
            raise _Refused(f"give a numpy array a state numpy never writes (version {_short(version)})")
        if not (type(shape) is tuple and len(shape) <= MAX_NDIM
                and all(type(d) is int and d >= 0 for d in shape)):
            raise _Refused(f"build a numpy array of shape {_short(shape)}")
        if type(fortran) not in (bool, int) or fortran not in (0, 1):
            raise _Refused(f"give a numpy array a state numpy never writes (order flag {_short(fortran)})")
        if type(raw) is str:  # a Python 2 pickle read with encoding='latin1', as numpy itself accepts
            raw = raw.encode("latin1")
        if type(raw) is not bytes:
            # an object array stores a list of objects here: checkpoints never hold one
            raise _Refused(f"build a numpy array from {type(raw).__name__} data (an object array); "
                           "checkpoints hold numeric arrays only")
        size = 1
        for d in shape:
            size *= d
        if size * dtype.dtype.itemsize != len(raw):
            raise _Refused(f"build a numpy array of shape {shape} {dtype.dtype} from {len(raw)} bytes "
                           f"(needs {size * dtype.dtype.itemsize})")
        array = _NP_RECONSTRUCT(np.ndarray, (0,), b"b")
        array.__setstate__((1, shape, dtype.dtype, bool(fortran), raw))  # checked above: numpy's own path
        self.array = array

    def value(self):
        if self.array is None:
            raise _Refused("leave a numpy array without its data")
        return self.array


class _Value(_Placeholder):
    """A finished value (a numpy scalar) that takes no state."""

    __slots__ = ("_value",)
    label = "a numpy scalar"

    def __init__(self, value):
        self._value = value

    def value(self):
        return self._value


class _OrderedDict(collections.OrderedDict):
    """``collections.OrderedDict()`` while the pickle fills it: items yes, state no."""

    def __setstate__(self, state):
        raise _Refused(f"hand state to an OrderedDict ({_short(state)})")

    def __reduce__(self):
        raise TypeError("_OrderedDict is internal to safe_pickle")


# ---------------------------------------------------------------- the allowed callables

class _ArrayClass:
    """What ``numpy.ndarray`` resolves to: a token ``_reconstruct`` accepts, callable by nothing."""

    __slots__ = ()

    def __setstate__(self, state):
        raise _Refused("hand state to numpy.ndarray")

    def __repr__(self):
        return "numpy.ndarray"


_ARRAY_CLASS = _ArrayClass()


def _reconstruct(*args):
    if len(args) != 3 or args[0] is not _ARRAY_CLASS or args[1] != (0,) or args[2] not in (b"b", "b"):
        raise _Refused(f"call numpy's _reconstruct with arguments numpy never writes {_describe_args(args)}")
    return _PendingArray()


def _dtype(*args):
    # numpy 2 writes (code, False, True), numpy 1 (code, 0, 1)
    if not (len(args) == 3 and type(args[0]) is str and args[0] in _DTYPE_CODES
            and args[1] in (0, 1) and args[2] in (0, 1) and type(args[1]) in (bool, int)
            and type(args[2]) in (bool, int)):
        raise _Refused(f"call numpy.dtype with {_describe_args(args)}; checkpoints hold numeric dtypes "
                       f"({', '.join(sorted(_DTYPE_CODES))}) only")
    return _PendingDtype(args[0])


def _scalar(*args):
    if len(args) != 2 or type(args[0]) is not _PendingDtype:
        raise _Refused(f"call numpy's scalar with {_describe_args(args)}; checkpoints hold numeric scalars only")
    dtype, raw = args[0].dtype, args[1]
    if type(raw) is str:
        raw = raw.encode("latin1")
    if type(raw) is not bytes or len(raw) != dtype.itemsize:
        raise _Refused(f"call numpy's scalar with {_describe_args(args)}")
    return _Value(_NP_SCALAR(dtype, raw))


def _encode(*args):
    if not (len(args) == 2 and type(args[0]) is str and args[1] in ("latin1", "latin-1")):
        raise _Refused(f"call _codecs.encode with {_describe_args(args)} (only (text, 'latin1') holds bytes)")
    return args[0].encode("latin1")


def _bytes(*args):
    if args:
        raise _Refused(f"call builtins.bytes with {_describe_args(args)} (only bytes() is written)")
    return b""


def _tuple(*args):
    if len(args) != 1 or type(args[0]) not in (list, tuple):
        raise _Refused(f"call builtins.tuple with {_describe_args(args)}")
    return tuple(args[0])


def _eval(*args):
    # Paddle saves a DenseTensor as eval('data', {'data': array}); nothing is evaluated here.
    if (len(args) == 2 and args[0] == "data" and type(args[1]) is dict and list(args[1]) == ["data"]
            and type(args[1]["data"]) is _PendingArray):
        return args[1]["data"]
    raise _Refused(f"call builtins.eval with {_describe_args(args)} (Paddle only writes eval('data', "
                   "{'data': array}))")


def _ordered_dict(*args):
    if not args:
        return _OrderedDict()
    pairs = args[0]
    if (len(args) == 1 and type(pairs) in (list, tuple)
            and all(type(p) in (list, tuple) and len(p) == 2 and _plain_key(p[0]) for p in pairs)):
        return _OrderedDict(pairs)
    raise _Refused(f"call collections.OrderedDict with {_describe_args(args)}")


class _Allowed:
    """What an allowed global resolves to: calls its checker; takes no state, has no attributes."""

    __slots__ = ("_name", "_check")

    def __init__(self, name, check):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_check", check)

    def __call__(self, *args, **kwargs):
        if kwargs:
            raise _Refused(f"call {self._name} with keyword arguments {_short(kwargs)}")
        return self._check(*args)

    def __setattr__(self, name, value):
        raise _Refused(f"change {self._name}")

    def __setstate__(self, state):
        raise _Refused(f"hand state to {self._name} ({_short(state)})")

    def __repr__(self):
        return self._name


def _allowed():
    table = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "_reconstruct")] = _Allowed("numpy's _reconstruct", _reconstruct)
        table[(module, "scalar")] = _Allowed("numpy's scalar", _scalar)
    table[("numpy", "dtype")] = _Allowed("numpy.dtype", _dtype)
    table[("numpy", "ndarray")] = _ARRAY_CLASS
    table[("_codecs", "encode")] = _Allowed("_codecs.encode", _encode)
    table[("collections", "OrderedDict")] = _Allowed("collections.OrderedDict", _ordered_dict)
    for builtins in ("builtins", "__builtin__"):  # Python 3 / protocol-2 (Python 2) spellings
        table[(builtins, "bytes")] = _Allowed("builtins.bytes", _bytes)
        table[(builtins, "tuple")] = _Allowed("builtins.tuple", _tuple)
        table[(builtins, "eval")] = _Allowed("builtins.eval", _eval)
    return table


ALLOWED = _allowed()
# modules whose public name users know (os.system pickles as posix.system)
_DISPLAY_MODULE = {"posix": "os", "nt": "os", "__builtin__": "builtins", "copy_reg": "copyreg"}


def display_name(dotted):
    """``posix.system`` -> ``os.system``: a global as users know it."""
    module, _, name = dotted.rpartition(".")
    return f"{_DISPLAY_MODULE.get(module, module)}.{name}" if module else dotted


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        found = ALLOWED.get((module, name))
        if found is None:
            raise _Refused(f"call {display_name(f'{module}.{name}')}")
        return found

    def persistent_load(self, pid):
        raise _Refused(f"load a persistent object ({_short(pid)})")


# ---------------------------------------------------------------- the pass that finishes the result

_PLAIN = (str, int, float, bool, type(None), bytes)
_IN_PROGRESS = object()


def _plain_key(key):
    return type(key) in _PLAIN or (type(key) is tuple and all(type(k) in _PLAIN for k in key))


def _finish(obj, memo, depth):
    kind = type(obj)
    if kind in _PLAIN:
        return obj
    if depth > MAX_DEPTH:
        raise _Refused(f"hold containers nested more than {MAX_DEPTH} deep")
    key = id(obj)
    done = memo.get(key)
    if done is _IN_PROGRESS:
        raise _Refused("hold a structure that contains itself")
    if done is not None:
        return done[0]
    memo[key] = _IN_PROGRESS
    if kind in (_PendingArray, _PendingDtype, _Value):
        out = obj.value()
    elif kind is dict or kind is _OrderedDict:
        out = {} if kind is dict else collections.OrderedDict()
        for k, v in obj.items():
            if not _plain_key(k):
                raise _Refused(f"hold a dict key of type {type(k).__name__}")
            out[k] = _finish(v, memo, depth + 1)
    elif kind is list:
        out = [_finish(v, memo, depth + 1) for v in obj]
    elif kind is tuple:
        out = tuple(_finish(v, memo, depth + 1) for v in obj)
    else:
        # e.g. an allowed callable itself, numpy.ndarray, a set, a bytearray: nothing a checkpoint holds
        raise _Refused(f"hold an object of type {kind.__name__} ({_short(obj)})")
    memo[key] = (out, obj)  # keep obj alive so its id is not reused while the pass runs
    return out


# ---------------------------------------------------------------- entry point

def refusal_message(name, what):
    """The one line for a refused file (``what``: "call os.system", ...)."""
    return (f"'{name}' is not a plain checkpoint: it asks to {what}; refusing to load it. If you trust this "
            "file, pass --trust-pickle")


def load(path, name=None):
    """Unpickle ``path`` (a file written by ``paddle.save`` / ``pickle``) allowing plain data only.

    Returns the object with numpy arrays and scalars (no Paddle tensors; see ``save_load.load``).

    Raises:
        UnsafePickleError: the file asks for anything else; nothing it asked for was called.
        PickleReadError: not a complete pickle.
    """
    name = name if name is not None else os.fspath(path)
    with open(path, "rb") as f:
        unpickler = _RestrictedUnpickler(f, encoding="latin1")  # as paddle.load: Python 2 str -> str
        try:
            result = unpickler.load()
            result = _finish(result, {}, 0)
        except _Refused as refused:
            raise UnsafePickleError(refusal_message(name, refused.what)) from None
        except RecursionError:
            raise UnsafePickleError(refusal_message(name, "hold containers nested too deep")) from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
                OverflowError, UnicodeDecodeError, MemoryError) as err:
            first = str(err).strip().splitlines()
            raise PickleReadError(f"checkpoint '{name}' could not be read ({type(err).__name__}: "
                                  f"{first[0][:200] if first else ''}); is it a complete .pdparams/.pdopt "
                                  "file?") from err
        finally:
            del unpickler
    return result
