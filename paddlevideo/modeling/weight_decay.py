"""Per-parameter weight-decay marks, the way Paddle's optimizers read them.

A parameter whose ``regularizer`` attribute is set keeps that regularizer whatever the optimizer's
``weight_decay``: ``Momentum`` fuses a parameter's own ``L2Decay`` into its update instead of the optimizer's
(Paddle 3.x, ``paddle.optimizer.Momentum._append_optimize_op``). Marking a parameter with ``L2Decay(0.0)``
therefore exempts it from the L2 decay of ``OPTIMIZER.weight_decay``; this is how PaddleVideo's PP-TimeSformer
keeps its embeddings and its head's bias undecayed, and the same mark here gives the same update.
(AdamW's decoupled decay is chosen by ``no_weight_decay_name`` instead, as in PaddleVideo.)
"""

from paddle.regularizer import L2Decay


def mark_no_weight_decay(param):
    """Exempt ``param`` from the optimizer's L2 weight decay (its own ``L2Decay(0.0)``); returns it."""
    param.regularizer = L2Decay(0.0)
    return param


def is_decay_exempt(param):
    """True when ``param`` carries its own zero L2 decay (see :func:`mark_no_weight_decay`)."""
    regularizer = getattr(param, "regularizer", None)
    return isinstance(regularizer, L2Decay) and float(regularizer._coeff) == 0.0


def no_weight_decay_names(model):
    """Structural names (``backbone.cls_token``, ``head.fc.bias``) of the parameters exempt from L2 decay."""
    return [name for name, param in model.named_parameters() if is_decay_exempt(param)]
