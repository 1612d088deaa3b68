"""Optimizers built from the ``OPTIMIZER`` config section.

Supported (``OPTIMIZER.name``):

- ``Momentum``: ``momentum``, ``use_nesterov``, ``weight_decay: {name: L2, value: 1e-4}``
  (coupled L2 regularisation, as PaddleVideo's K400 recipe). A parameter the model marks as not decayed
  (``modeling.weight_decay``: PP-TimeSformer's embeddings and head bias) keeps its own zero decay: the
  mark wins over ``weight_decay``, as in Paddle (and so in PaddleVideo).
- ``AdamW``: ``beta1``, ``beta2``, ``epsilon``, ``weight_decay`` (a number: decoupled decay),
  ``no_weight_decay_name`` (space-separated name fragments excluded from decay, e.g.
  ``"pos_embed cls_token time_embed"``).

Both accept ``grad_clip: {name: ClipGradByGlobalNorm, value: 1.0}`` (or just a number).
"""

import paddle

from ..common.errors import ConfigError
from .lr import build_lr


def build_grad_clip(cfg):
    """``None``, a number (global-norm clip) or ``{name: ClipGradByGlobalNorm|ClipGradByNorm|ClipGradByValue, value}``."""
    if cfg is None:
        return None
    if isinstance(cfg, (int, float)):
        return paddle.nn.ClipGradByGlobalNorm(float(cfg))
    name = cfg.get("name", "ClipGradByGlobalNorm")
    value = cfg.get("value")
    if value is None:
        raise ConfigError("OPTIMIZER.grad_clip needs a 'value'")
    if name == "ClipGradByGlobalNorm":
        return paddle.nn.ClipGradByGlobalNorm(float(value))
    if name == "ClipGradByNorm":
        return paddle.nn.ClipGradByNorm(float(value))
    if name == "ClipGradByValue":
        return paddle.nn.ClipGradByValue(float(value))
    raise ConfigError(f"OPTIMIZER.grad_clip.name '{name}' is unknown; use ClipGradByGlobalNorm, "
                      "ClipGradByNorm or ClipGradByValue")


def _l2_decay(cfg):
    if cfg is None:
        return None
    if isinstance(cfg, (int, float)):
        return paddle.regularizer.L2Decay(float(cfg))
    if cfg.get("name", "L2") != "L2" or "value" not in cfg:
        raise ConfigError("OPTIMIZER.weight_decay for Momentum must be {name: L2, value: <number>}")
    return paddle.regularizer.L2Decay(float(cfg["value"]))


def build_optimizer(cfg, model, updates_per_epoch, epochs, iters_per_epoch=None):
    """Build the optimizer and its learning-rate schedule.

    Args:
        cfg: the ``OPTIMIZER`` section.
        model: the ``paddle.nn.Layer`` to optimise (its parameters and their names).
        updates_per_epoch: optimizer updates per epoch (after gradient accumulation).
        epochs: planned number of epochs.
        iters_per_epoch: training iterations (batches) per epoch and process, for schedules stepped every
            iteration (:func:`.lr.build_lr`); default ``updates_per_epoch``.
    Returns:
        ``(optimizer, lr)``: ``lr`` is the scheduler (has ``step_unit``) or a float.
    """
    if not cfg or "name" not in cfg:
        raise ConfigError("the config needs an OPTIMIZER section with a 'name' (Momentum or AdamW)")
    kwargs = dict(cfg)
    name = kwargs.pop("name")
    if "learning_rate" not in kwargs:
        raise ConfigError("OPTIMIZER needs a 'learning_rate' (a number or a schedule)")
    lr = build_lr(kwargs.pop("learning_rate"), updates_per_epoch, epochs, iters_per_epoch)
    grad_clip = build_grad_clip(kwargs.pop("grad_clip", None))
    params = model.parameters()
    if name == "Momentum":
        opt = paddle.optimizer.Momentum(
            learning_rate=lr,
            momentum=float(kwargs.pop("momentum", 0.9)),
            use_nesterov=bool(kwargs.pop("use_nesterov", False)),
            weight_decay=_l2_decay(kwargs.pop("weight_decay", None)),
            grad_clip=grad_clip,
            parameters=params,
        )
    elif name == "AdamW":
        decay = kwargs.pop("weight_decay", 0.01)
        if not isinstance(decay, (int, float)):
            raise ConfigError("OPTIMIZER.weight_decay for AdamW must be a number (decoupled decay)")
        skip = str(kwargs.pop("no_weight_decay_name", "") or "").split()
        decay_names = {p.name for n, p in model.named_parameters() if not any(s in n for s in skip)}
        opt = paddle.optimizer.AdamW(
            learning_rate=lr,
            beta1=float(kwargs.pop("beta1", 0.9)),
            beta2=float(kwargs.pop("beta2", 0.999)),
            epsilon=float(kwargs.pop("epsilon", 1e-8)),
            weight_decay=float(decay),
            apply_decay_param_fun=(lambda pname: pname in decay_names) if skip else None,
            grad_clip=grad_clip,
            parameters=params,
        )
    else:
        raise ConfigError(f"OPTIMIZER.name '{name}' is unknown; use Momentum or AdamW")
    if kwargs:
        raise ConfigError(f"OPTIMIZER ({name}) has unknown keys {sorted(kwargs)}")
    return opt, lr
