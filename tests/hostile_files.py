"""Hostile checkpoints for the safety tests: pickles that create a marker file when fully unpickled.

Each payload, unpickled by ``pickle.load`` (as ``paddle.load`` does), creates ``marker``; the tests prove it
(so a payload that silently stopped working cannot make a test pass) and then that the project's loader
refuses the same file with no marker. Payloads written with plain ``__reduce__`` work in any protocol;
the ones that chain calls (``getattr(__import__('os'), 'system')``) are pickle opcodes spliced into a
protocol-2 stream in place of a placeholder string.
"""

import collections
import os
import pickle
import struct
import subprocess

import numpy as np


class Call:
    """Pickles as ``fn(*args)``: what a hostile checkpoint holds in place of a tensor."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class EvilDict(dict):
    """A subclass of an allowed type whose ``__setstate__`` runs a command."""

    def __reduce__(self):
        return EvilDict, (), dict(self)

    def __setstate__(self, state):
        os.system(f"touch '{state['marker']}'")


class Raw:
    """Pickle opcodes to splice in (see :func:`dumps`)."""

    def __init__(self, ops):
        self.ops = ops


def _p0(text):
    """A protocol-0 unicode string opcode (``V``) for ``text``."""
    return b"V" + text.encode("raw_unicode_escape") + b"\n"


def payloads(marker):
    """``{name: (object, word the refusal must name)}``; every object creates ``marker`` when unpickled."""
    marker = str(marker)
    touch = f"touch '{marker}'"
    getattr_chain = (b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(" + _p0("os") + b"tR" + _p0("system") + b"tR("
                     + _p0(touch) + b"tR")
    # import_module first (kept in memo slot 900), so it is the first name the stream asks for
    import_chain = (b"cimportlib\nimport_module\n(" + _p0("os") + b"tRp900\n0cbuiltins\ngetattr\n(g900\n"
                    + _p0("system") + b"tR(" + _p0(touch) + b"tR")
    return {
        "os.system": (Call(os.system, touch), "os.system"),
        "eval": (Call(eval, f"__import__('os').system({touch!r})"), "builtins.eval"),
        "exec": (Call(exec, f"import os; os.system({touch!r})"), "builtins.exec"),
        "subprocess": (Call(subprocess.call, ["touch", marker]), "subprocess.call"),
        "getattr": (Raw(getattr_chain), "builtins.getattr"),
        "importlib": (Raw(import_chain), "importlib.import_module"),
        "setstate": (EvilDict(marker=marker), "EvilDict"),
    }


def placements(payload):
    """``{name: object}``: ``payload`` where a checkpoint holds data (weights, optimizer, big-param chunk)."""
    weight = np.arange(12, dtype=np.float32).reshape(3, 4)
    return {
        # the case: one value of an otherwise real state dict
        "state_dict": {"backbone.pos_embed": weight, "backbone.cls_token": payload, "head.fc.bias": weight[0],
                       "StructuredToParameterName@@": {"backbone.pos_embed": "create_parameter_1"}},
        "nested": {"backbone.pos_embed": weight, "extra": {"a": [1, 2.5, {"b": ("x", {"c": [payload]})}]}},
        "optimizer": {"optimizer": {"linear_0.w_0_moment1_0": ("linear_0.w_0_moment1_0", weight),
                                    "LR_Scheduler": {"last_epoch": 3, "last_lr": payload}},
                      "epoch": 3, "portable": True},
        "big_param_chunk": {"head.fc.weight@@.0": weight.reshape(-1)[:6], "head.fc.weight@@.1": payload,
                            "UnpackBigParamInfor@@": {"head.fc.weight": {
                                "OriginShape": (3, 4), "slices": ["head.fc.weight@@.0", "head.fc.weight@@.1"]}}},
    }


def dumps(obj, protocol=4):
    """``pickle.dumps(obj)`` with every :class:`Raw` in ``obj`` replaced by its opcodes (protocol 2 then)."""
    raws = []

    def swap(value):
        if isinstance(value, Raw):
            raws.append(value.ops)
            return f"@@raw{len(raws) - 1}@@"
        if isinstance(value, dict) and type(value) in (dict, collections.OrderedDict):
            return type(value)((k, swap(v)) for k, v in value.items())
        if type(value) in (list, tuple):
            return type(value)(swap(v) for v in value)
        return value

    obj = swap(obj)
    if not raws:
        return pickle.dumps(obj, protocol=protocol)
    data = pickle.dumps(obj, protocol=2)  # no frames: opcodes can be spliced
    for i, ops in enumerate(raws):
        text = f"@@raw{i}@@".encode()
        opcode = b"X" + struct.pack("<I", len(text)) + text  # BINUNICODE, as protocol 2 writes a str
        assert data.count(opcode) == 1
        data = data.replace(opcode, ops)
    return data


def write(path, obj, protocol=4):
    with open(path, "wb") as f:
        f.write(dumps(obj, protocol))
    return path
