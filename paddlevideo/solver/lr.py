"""Learning-rate schedules built from ``OPTIMIZER.learning_rate``.

Every schedule carries ``step_unit``: ``"epoch"`` (the trainer calls ``step()`` once after each
epoch) or ``"step"`` (once after each optimizer update, i.e. after a full gradient-accumulation
window). The learning rate is used exactly as configured: it is *not* rescaled for the number of
cards or the global batch (PaddleVideo does not rescale either; the K400 config's 0.005 is the value
for a global batch of 64).
"""

import math

from paddle.optimizer import lr as paddle_lr

from ..utils.config import ConfigError


class MultiStepDecay(paddle_lr.MultiStepDecay):
    """``lr * gamma ** (number of milestones <= epoch)``; milestones are epoch numbers."""

    step_unit = "epoch"


class WarmupCosine(paddle_lr.LRScheduler):
    """Linear warm-up from ``warmup_start_lr`` to ``learning_rate`` over ``warmup_steps`` optimizer
    updates, then cosine decay to ``min_lr`` at ``total_steps``; stepped after every update.

    At update ``s`` (0-based, the lr used *for* update s):
    ``s < W``: ``start + (lr - start) * s / W``; else ``min + (lr - min) * (1 + cos(pi * p)) / 2``
    with ``p = min((s - W) / max(total - W, 1), 1)``.
    """

    step_unit = "step"

    def __init__(self, learning_rate, warmup_steps, total_steps, warmup_start_lr=0.0, min_lr=0.0,
                 last_epoch=-1, verbose=False):
        if total_steps <= 0:
            raise ConfigError(f"WarmupCosine: total_steps must be positive, got {total_steps}")
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.warmup_start_lr = float(warmup_start_lr)
        self.min_lr = float(min_lr)
        super().__init__(float(learning_rate), last_epoch, verbose)

    def get_lr(self):
        step = self.last_epoch
        if step < self.warmup_steps:
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * step / self.warmup_steps
        progress = min((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 1.0)
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_lr(cfg, updates_per_epoch, epochs):
    """Build the schedule named by ``cfg['name']`` (or a constant for a plain number).

    Args:
        cfg: ``OPTIMIZER.learning_rate``: a number, or a mapping with ``name`` and its keys.
            ``MultiStepDecay``: ``learning_rate``, ``milestones`` (epochs), ``gamma``.
            ``WarmupCosine``: ``learning_rate``, ``warmup_steps`` or ``warmup_epochs``,
            optional ``total_steps`` (default ``epochs * updates_per_epoch``), ``warmup_start_lr``,
            ``min_lr``.
        updates_per_epoch: optimizer updates per epoch (after gradient accumulation).
        epochs: planned number of epochs.
    Returns:
        a ``paddle.optimizer.lr.LRScheduler`` with a ``step_unit`` attribute, or a float.
    """
    if isinstance(cfg, (int, float)):
        return float(cfg)
    if not isinstance(cfg, dict) or "name" not in cfg:
        raise ConfigError("OPTIMIZER.learning_rate must be a number or a mapping with a 'name'")
    kwargs = dict(cfg)
    name = kwargs.pop("name")
    try:
        if name == "MultiStepDecay":
            return MultiStepDecay(learning_rate=kwargs.pop("learning_rate"), milestones=list(kwargs.pop("milestones")),
                                  gamma=kwargs.pop("gamma", 0.1), **_no_more(kwargs, name))
        if name == "WarmupCosine":
            if "warmup_epochs" in kwargs:
                kwargs["warmup_steps"] = int(round(kwargs.pop("warmup_epochs") * updates_per_epoch))
            kwargs.setdefault("warmup_steps", 0)
            kwargs.setdefault("total_steps", epochs * updates_per_epoch)
            return WarmupCosine(**kwargs)
    except KeyError as err:
        raise ConfigError(f"OPTIMIZER.learning_rate ({name}) needs the key {err}") from None
    except TypeError as err:
        raise ConfigError(f"OPTIMIZER.learning_rate ({name}): {err}") from None
    raise ConfigError(f"OPTIMIZER.learning_rate.name '{name}' is unknown; use MultiStepDecay or WarmupCosine")


def _no_more(kwargs, name):
    if kwargs:
        raise ConfigError(f"OPTIMIZER.learning_rate ({name}) has unknown keys {sorted(kwargs)}")
    return {}
