"""Paddle 3.3: tracing a ``.pdmodel`` (old IR) through APIs that go straight to C++.

Bug: under ``paddle.pir_utils.OldIrGuard``, ``paddle.matmul``, ``F.gelu``, ``paddle.multiply``, ``paddle.exp``, ...
call ``paddle._C_ops`` kernels that reject the old graph's ``Variable``s, so ``paddle.jit.save`` of the seed's
``.pdmodel`` fails. Reproduced by ``tests/test_deploy_export.py::test_exported_forms_match_dygraph`` (the
``.pdmodel`` export) once :func:`old_ir_ops` is left out of ``paddlevideo/deploy/export.py``.
Delete this module when Paddle traces the old IR through those APIs again (or when ``.pdmodel`` is dropped).
"""

import contextlib

import paddle


def _call_args(names, defaults, args, kwargs):
    values = dict(defaults)
    values.update(zip(names, args))
    values.update({k: v for k, v in kwargs.items() if k in names})
    return [values.get(name) for name in names]


def _append_op(op_type, inputs, attrs, like):
    from paddle.base.layer_helper import LayerHelper

    helper = LayerHelper(op_type)
    out = helper.create_variable_for_type_inference(like.dtype)
    helper.append_op(type=op_type, inputs=inputs, outputs={"Out": [out]}, attrs=attrs)
    return out


def _is_old_ir_variable(value):
    from paddle.base.framework import Variable, in_pir_mode

    return isinstance(value, Variable) and not in_pir_mode()


def _matmul(original):
    def matmul(*args, **kwargs):
        x, y, trans_x, trans_y = _call_args(["x", "y", "transpose_x", "transpose_y"],
                                            {"transpose_x": False, "transpose_y": False}, args, kwargs)
        if not _is_old_ir_variable(x):
            return original(*args, **kwargs)
        return _append_op("matmul_v2", {"X": [x], "Y": [y]}, {"trans_x": bool(trans_x), "trans_y": bool(trans_y)}, x)

    return matmul


def _gelu(original):
    def gelu(*args, **kwargs):
        x, approximate = _call_args(["x", "approximate"], {"approximate": False}, args, kwargs)
        if not _is_old_ir_variable(x):
            return original(*args, **kwargs)
        return _append_op("gelu", {"X": [x]}, {"approximate": bool(approximate)}, x)

    return gelu


def _unary(op_type):
    def wrap(original):
        def unary(*args, **kwargs):
            x = args[0] if args else kwargs.get("x")
            if not _is_old_ir_variable(x):
                return original(*args, **kwargs)
            return _append_op(op_type, {"X": [x]}, {}, x)

        return unary

    return wrap


def _multiply(original):
    def multiply(*args, **kwargs):
        x, y = _call_args(["x", "y"], {}, args, kwargs)
        if not _is_old_ir_variable(x):
            return original(*args, **kwargs)
        return _append_op("elementwise_mul", {"X": [x], "Y": [y]}, {"axis": -1}, x)

    return multiply


# C++-only APIs a TimeSformer (and its variants' heads) may call, with their old-IR operators.
_OLD_IR_OPS = {
    "matmul": _matmul,
    "gelu": _gelu,
    "multiply": _multiply,
    "exp": _unary("exp"),
    "sqrt": _unary("sqrt"),
    "tanh": _unary("tanh"),
    "sigmoid": _unary("sigmoid"),
}


@contextlib.contextmanager
def old_ir_ops():
    """While tracing under ``OldIrGuard``, make the C++-only APIs append old-IR operators.

    Paddle 3.3's Python wrappers look the kernels up on ``paddle._C_ops`` at call time, so swapping
    the module attributes reaches ``paddle.matmul``, ``Tensor.matmul``, ``F.gelu`` and ``nn.GELU`` alike.
    Dynamic-graph and PIR calls pass straight through; the originals are restored on exit.
    """
    saved = {name: getattr(paddle._C_ops, name) for name in _OLD_IR_OPS}
    try:
        for name, make in _OLD_IR_OPS.items():
            setattr(paddle._C_ops, name, make(saved[name]))
        yield
    finally:
        for name, original in saved.items():
            setattr(paddle._C_ops, name, original)
