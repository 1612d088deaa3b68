"""The backbone's fast CPU paths, each equal to a Paddle op and chosen per call by an explicit switch.

Every function and layer here takes ``kernels``: ``"auto"`` uses this project's CPU paths where they apply
(eager mode on a CPU tensor; the C++ kernels of :mod:`.cpu_kernels` also need float32 and a successful
build), ``"paddle"`` uses Paddle's own ops everywhere. Elsewhere (GPU, AMP, static-graph export, no
compiler) ``"auto"`` is Paddle's ops too. Equal values: tests/test_perf_*.py; timings: docs/benchmarks.md.

- :class:`Linear`: the bias added inside the GEMM (``addmm``) at inference, a BLAS bias gradient in training.
- :class:`LayerNorm`: Paddle's forward with the fused C++ backward in training.
- :func:`gelu`: exact (erf) GELU with vectorised C++ forward and backward.
- :func:`scaled_softmax`: ``softmax(scale * x)`` in one C++ pass.
- :func:`attention`: multi-head attention from the packed ``qkv`` projection, routed once per call to the
  C++ kernel, Paddle's ``scaled_dot_product_attention`` or the composite of :func:`attend`.

:func:`call_counts` tells which paths ran (a counter per path, for tests and diagnostics).
"""

import collections

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .cpu_kernels import cpu_kernels, loaded_cpu_kernels, switched_off

KERNELS = ("auto", "paddle")
ATTENTION_IMPLS = ("fused", "plain")

_calls = collections.Counter()


def call_counts():
    """``{path: calls}`` of the fast paths taken in this process so far, e.g. ``attention.kernel``,
    ``attention.sdpa``, ``attention.composite``, ``linear.addmm``, ``linear.blas_grad``, ``layer_norm.kernel``,
    ``gelu.kernel``, ``softmax.kernel`` (compare two snapshots)."""
    return dict(_calls)


@paddle.jit.not_to_static
def _count(path):
    _calls[path] += 1


def resolve_kernels(kernels):
    """Check a ``kernels`` switch; ``PADDLEVIDEO_FAST_CPU_OPS=0`` in the environment makes ``auto`` ``paddle``.

    ``auto`` on a CPU device builds (or loads from the cache) the C++ kernels now, while the layer is built:
    a forward never compiles anything (it uses the kernels only once they are loaded)."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels '{kernels}' is unknown; use one of {', '.join(KERNELS)}")
    if switched_off():
        return "paddle"
    if kernels == "auto" and paddle.get_device() == "cpu":
        cpu_kernels()
    return kernels


def check_attention_impl(impl):
    """Check an ``attention_impl`` switch (``fused`` | ``plain``, see :func:`attention`)."""
    if impl not in ATTENTION_IMPLS:
        raise ValueError(f"attention_impl '{impl}' is unknown; use one of {', '.join(ATTENTION_IMPLS)}")
    return impl


def uses_cpu_kernels(x, kernels):
    """True where the C++ kernels apply to ``x``: ``kernels="auto"``, eager mode, a float32 CPU tensor, and
    the kernels loaded (when a layer was built, :func:`resolve_kernels`)."""
    return (kernels == "auto" and paddle.in_dynamic_mode() and x.place.is_cpu_place() and x.dtype == paddle.float32
            and loaded_cpu_kernels() is not None)


class _LinearFunction(paddle.autograd.PyLayer):
    """``x @ W + b`` on CPU with a BLAS bias gradient: ``db = ones @ dy`` (GEMV).

    Paddle's own backward of the bias add reduces ``dy`` over its rows with a generic column reduction,
    much slower than this GEMV (docs/benchmarks.md). The input and weight gradients are the usual GEMMs.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        rows = x.reshape([-1, x.shape[-1]])
        ctx.save_for_backward(rows, weight)
        ctx.x_shape = list(x.shape)
        # PyLayer wants None for every input that takes no gradient (a raw clip, frozen layers).
        ctx.needs_grad = [not t.stop_gradient for t in (x, weight, bias)]
        return paddle.addmm(bias, rows, weight).reshape(ctx.x_shape[:-1] + [weight.shape[1]])

    @staticmethod
    def backward(ctx, grad):
        rows, weight = ctx.saved_tensor()
        grad = grad.reshape([-1, grad.shape[-1]])
        need_x, need_w, need_b = ctx.needs_grad
        grad_x = paddle.matmul(grad, weight, transpose_y=True).reshape(ctx.x_shape) if need_x else None
        grad_w = paddle.matmul(rows, grad, transpose_x=True) if need_w else None
        grad_b = None
        if need_b:
            grad_b = paddle.matmul(paddle.ones([1, grad.shape[0]], dtype=grad.dtype), grad).reshape([-1])
        return grad_x, grad_w, grad_b


def linear(x, weight, bias, training, kernels="auto"):
    """``x @ weight + bias`` on ``[..., in]``: on CPU in eager mode (``kernels="auto"``) the BLAS bias gradient
    when ``training``, else ``addmm``; ``F.linear`` elsewhere and without a bias (Paddle Inference fuses the
    matmul and the add itself)."""
    if kernels != "auto" or bias is None or not paddle.in_dynamic_mode() or not x.place.is_cpu_place():
        return F.linear(x, weight, bias)
    if training:
        _count("linear.blas_grad")
        return _LinearFunction.apply(x, weight, bias)
    _count("linear.addmm")
    rows = paddle.addmm(bias, x.reshape([-1, x.shape[-1]]), weight)
    return rows.reshape(list(x.shape[:-1]) + [weight.shape[1]])


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) with the CPU paths of :func:`linear`."""

    def __init__(self, in_features, out_features, bias_attr=None, kernels="auto"):
        super().__init__(in_features, out_features, bias_attr=bias_attr)
        self.kernels = resolve_kernels(kernels)

    def forward(self, x):
        return linear(x, self.weight, self.bias, self.training, self.kernels)


class _LayerNormFunction(paddle.autograd.PyLayer):
    """Paddle's LayerNorm forward with the fused CPU backward of :mod:`.cpu_kernels` (fp32, last axis)."""

    @staticmethod
    def forward(ctx, x, weight, bias, epsilon):
        x = x.contiguous()  # the kernel reads raw rows
        ctx.save_for_backward(x, weight)
        ctx.epsilon = epsilon
        ctx.needs_grad = [not t.stop_gradient for t in (x, weight, bias)]
        return F.layer_norm(x, x.shape[-1:], weight, bias, epsilon)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensor()
        grads = loaded_cpu_kernels().pv_layer_norm_backward(x, weight, grad.contiguous(), ctx.epsilon)
        return tuple(g if need else None for g, need in zip(grads, ctx.needs_grad))


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the last axis (same parameters and state-dict keys) whose CPU training backward
    is the fused C++ kernel (``kernels="auto"``); elsewhere (GPU, export, eval, no compiler) ``nn.LayerNorm``."""

    def __init__(self, normalized_shape, epsilon=1e-5, kernels="auto"):
        super().__init__(normalized_shape, epsilon=epsilon)
        self.kernels = resolve_kernels(kernels)

    def forward(self, x):
        if (self.training and self.weight is not None and self.bias is not None
                and uses_cpu_kernels(x, self.kernels)):
            _count("layer_norm.kernel")
            return _LayerNormFunction.apply(x, self.weight, self.bias, self._epsilon)
        return super().forward(x)


class _GeluFunction(paddle.autograd.PyLayer):
    """Exact (erf) GELU with the vectorised CPU kernels of :mod:`.cpu_kernels` (fp32)."""

    @staticmethod
    def forward(ctx, x):
        x = x.contiguous()  # the kernels read raw elements
        ctx.save_for_backward(x)
        return loaded_cpu_kernels().pv_gelu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensor()
        return loaded_cpu_kernels().pv_gelu_backward(x, grad.contiguous())


def gelu(x, kernels="auto"):
    """Exact (erf) GELU, ``F.gelu(x, approximate=False)``, with the C++ kernels where they apply."""
    if uses_cpu_kernels(x, kernels):
        _count("gelu.kernel")
        return _GeluFunction.apply(x)
    return F.gelu(x, approximate=False)


class _ScaledSoftmaxFunction(paddle.autograd.PyLayer):
    """``softmax(scale * x)`` over the last axis with the CPU kernels of :mod:`.cpu_kernels` (fp32)."""

    @staticmethod
    def forward(ctx, x, scale):
        y = loaded_cpu_kernels().pv_scaled_softmax(x.contiguous(), scale)
        ctx.save_for_backward(y)
        ctx.scale = scale
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensor()
        return loaded_cpu_kernels().pv_scaled_softmax_backward(y, grad.contiguous(), ctx.scale)


def scaled_softmax(x, scale, kernels="auto"):
    """``softmax(x * scale)`` over the last axis (``scale > 0``), e.g. attention scores ``[B, heads, L, L]``:
    one C++ pass where the kernels apply; else ``F.softmax(x * scale)`` (no multiply for ``scale == 1``)."""
    if uses_cpu_kernels(x, kernels):
        _count("softmax.kernel")
        return _ScaledSoftmaxFunction.apply(x, scale)
    return F.softmax(x if scale == 1.0 else x * scale, axis=-1)


class _AttentionFunction(paddle.autograd.PyLayer):
    """Multi-head attention from the packed ``qkv`` ``[B, L, 3D]`` to ``[B, L, D]`` with the CPU kernel of
    :mod:`.cpu_kernels` (fp32): q, k, v read in place, the softmax fused, no transposes."""

    @staticmethod
    def forward(ctx, qkv, num_heads, scale):
        qkv = qkv.contiguous()
        save = not qkv.stop_gradient  # the probabilities are kept only for a backward pass
        out, probs = loaded_cpu_kernels().pv_attention(qkv, num_heads, scale, save)
        ctx.save_for_backward(qkv, probs)
        ctx.num_heads, ctx.scale = num_heads, scale
        return out

    @staticmethod
    def backward(ctx, grad):
        qkv, probs = ctx.saved_tensor()
        return loaded_cpu_kernels().pv_attention_backward(qkv, probs, grad.contiguous(), ctx.num_heads, ctx.scale)


@paddle.jit.not_to_static
def _attention_route(x, impl, kernels, dropout, packed):
    """``kernel``, ``sdpa`` or ``composite``. ``plain`` is always the composite. ``fused`` is the C++ kernel
    where it applies (packed input, no attention dropout, the kernel built with MKL), Paddle's
    ``scaled_dot_product_attention`` where the C++ kernels do not apply (GPU: flash attention), and otherwise
    the composite with the one-pass softmax (on CPU, Paddle's SDPA is that same composite of copies, GEMMs and
    a softmax)."""
    if impl == "plain":
        return "composite"
    if not uses_cpu_kernels(x, kernels):
        return "sdpa"
    if packed and dropout == 0.0 and hasattr(loaded_cpu_kernels(), "pv_attention"):
        return "kernel"
    return "composite"


def attention(qkv, num_heads, scale, dropout=0.0, training=False, impl="fused", kernels="auto"):
    """Multi-head attention from the packed projection ``qkv`` ``[B, L, 3D]`` (q, k, v blocks, heads
    contiguous) to ``[B, L, D]``: ``softmax(scale q k^T) v`` per head, with attention ``dropout`` in
    ``training``. ``impl`` (``fused`` | ``plain``) and ``kernels`` choose the path (:func:`_attention_route`)."""
    route = _attention_route(qkv, impl, kernels, dropout if training else 0.0, packed=True)
    if route == "kernel":
        _count("attention.kernel")
        return _AttentionFunction.apply(qkv, num_heads, scale)
    q, k, v = paddle.split(qkv, 3, axis=-1)
    return _attend(route, q, k, v, num_heads, scale, dropout, training, kernels)


def attend(q, k, v, num_heads, scale, dropout=0.0, training=False, impl="fused", kernels="auto",
           return_probs=False):
    """Multi-head attention of queries ``q`` ``[B, Lq, D]`` over keys and values ``k``, ``v`` ``[B, L, D]``
    -> ``[B, Lq, D]`` (Lq may be smaller than L, e.g. the CLS query alone). ``fused``: Paddle's
    ``scaled_dot_product_attention`` where the C++ kernels do not apply; otherwise the composite.

    ``return_probs``: also the attention probabilities ``[B, heads, Lq, L]`` (always the composite).
    """
    if return_probs:
        return _composite(q, k, v, num_heads, scale, dropout, training, kernels, return_probs=True)
    route = _attention_route(q, impl, kernels, dropout if training else 0.0, packed=False)
    return _attend(route, q, k, v, num_heads, scale, dropout, training, kernels)


def _attend(route, q, k, v, num_heads, scale, dropout, training, kernels):
    if route != "sdpa":
        return _composite(q, k, v, num_heads, scale, dropout, training, kernels)
    _count("attention.sdpa")
    dim = q.shape[-1]
    q, k, v = (t.reshape([-1, t.shape[1], num_heads, dim // num_heads]) for t in (q, k, v))  # [B, n, heads, hd]
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout if training else 0.0, training=training,
                                         scale=scale)
    return out.reshape([-1, out.shape[1], dim])


def _composite(q, k, v, num_heads, scale, dropout, training, kernels, return_probs=False):
    """matmul -> (scaled) softmax -> dropout -> matmul; the form every export format takes."""
    _count("attention.composite")
    queries, dim = q.shape[1], q.shape[-1]
    # One reshape + transpose per operand, straight into its matmul: the exported graph then matches Paddle
    # Inference's oneDNN reshape_transpose_matmul fusion (strided matmul inputs, no transpose copies), which
    # is faster than transposing the packed [B, L, 3, heads, head_dim] (docs/benchmarks.md).
    q, k, v = (t.reshape([-1, t.shape[1], num_heads, dim // num_heads]).transpose([0, 2, 1, 3])
               for t in (q, k, v))  # [B, heads, n, head_dim]
    probs = scaled_softmax(paddle.matmul(q, k, transpose_y=True), scale, kernels)
    out = paddle.matmul(F.dropout(probs, dropout, training=training) if dropout else probs, v)
    out = out.transpose([0, 2, 1, 3]).reshape([-1, queries, dim])
    return (out, probs) if return_probs else out
