"""Learning-rate schedules built from ``OPTIMIZER.learning_rate``.

Every schedule carries ``step_unit``: ``"epoch"`` (the trainer calls ``step()`` once after each
epoch), ``"step"`` (once after each optimizer update, i.e. after a full gradient-accumulation
window) or ``"iter"`` (once after each training iteration, i.e. each batch a process trains on, with or
without gradient accumulation, as PaddleVideo steps its ``iter_step`` schedules). The learning rate is used
exactly as configured: it is *not* rescaled for the number of cards or the global batch (PaddleVideo does not
rescale either; the K400 config's 0.005 is the value for a global batch of 64).
"""

import math

from paddle.optimizer import lr as paddle_lr

from ..common.errors import ConfigError
from ..common.rules import ListOf, NonNegative, NonNegativeInt, Positive, PositiveInt


class MultiStepDecay(paddle_lr.MultiStepDecay):
    """``lr * gamma ** (number of milestones <= epoch)``; milestones are epoch numbers."""

    step_unit = "epoch"

    def __init__(self, learning_rate: Positive, milestones: ListOf(NonNegativeInt, increasing=True),
                 gamma: Positive = 0.1, last_epoch=-1, verbose=False):
        super().__init__(learning_rate, milestones, gamma, last_epoch, verbose)


class WarmupCosine(paddle_lr.LRScheduler):
    """Linear warm-up from ``warmup_start_lr`` to ``learning_rate`` over ``warmup_steps`` optimizer
    updates, then cosine decay to ``min_lr`` at ``total_steps``; stepped after every update.

    At update ``s`` (0-based, the lr used *for* update s):
    ``s < W``: ``start + (lr - start) * s / W``; else ``min + (lr - min) * (1 + cos(pi * p)) / 2``
    with ``p = min((s - W) / max(total - W, 1), 1)``.
    """

    step_unit = "step"

    def __init__(self, learning_rate: Positive, warmup_steps: NonNegativeInt, total_steps: PositiveInt,
                 warmup_start_lr: NonNegative = 0.0, min_lr: NonNegative = 0.0, last_epoch=-1, verbose=False):
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


class CustomWarmupCosineDecay(paddle_lr.LRScheduler):
    """PaddleVideo's PP-TimeSformer schedule (its name and arguments): a linear warm-up into a cosine over
    epochs, evaluated at a fractional epoch ``e``.

    ``cos(x) = cosine_base_lr * (1 + cos(pi * x / max_epoch)) / 2``; ``lr(e) = cos(e)`` for
    ``e >= warmup_epochs``, else ``warmup_start_lr + e * (cos(warmup_epochs) - warmup_start_lr) / warmup_epochs``
    (the warm-up ends where the cosine is at ``warmup_epochs``, not at ``cosine_base_lr``).

    ``e`` is ``last_epoch``: construction takes it from -1 to 0 (the first iteration trains at
    ``warmup_start_lr``), every later :meth:`step` adds ``1 / num_iters``, summed step by step in floating point
    exactly as PaddleVideo does (so the value at every iteration is bit-identical to its). ``step(epoch)`` sets
    ``e`` directly.

    Args:
        warmup_start_lr: the learning rate at ``e = 0``.
        warmup_epochs: length of the warm-up, in epochs.
        cosine_base_lr: the cosine's peak (its value at ``e = 0``).
        max_epoch: the epoch where the cosine reaches 0.
        num_iters: :meth:`step` calls per epoch: the training iterations (batches per process) of an epoch when
            stepped every iteration (``iter_step: True``, filled in by :func:`build_lr`), 1 when stepped per epoch.
    """

    step_unit = "iter"

    def __init__(self, warmup_start_lr: NonNegative, warmup_epochs: NonNegative, cosine_base_lr: Positive,
                 max_epoch: Positive, num_iters, last_epoch=-1, verbose=False):
        if num_iters <= 0 or max_epoch <= 0:
            raise ConfigError(f"CustomWarmupCosineDecay: num_iters ({num_iters}) and max_epoch ({max_epoch}) must "
                              "be positive")
        self.warmup_start_lr, self.warmup_epochs = float(warmup_start_lr), warmup_epochs
        self.cosine_base_lr, self.max_epoch, self.num_iters = float(cosine_base_lr), max_epoch, num_iters
        super().__init__(float(cosine_base_lr), last_epoch, verbose)

    def step(self, epoch=None):
        if epoch is not None:
            self.last_epoch = epoch
        elif self.last_epoch == -1:
            self.last_epoch = 0
        else:
            self.last_epoch += 1 / self.num_iters  # accumulated, not k / num_iters: PaddleVideo's rounding
        self.last_lr = self.get_lr()

    def _cosine(self, epoch):
        return self.cosine_base_lr * (math.cos(math.pi * epoch / self.max_epoch) + 1.0) * 0.5

    def get_lr(self):
        epoch = self.last_epoch
        if epoch >= self.warmup_epochs:
            return self._cosine(epoch)
        slope = (self._cosine(self.warmup_epochs) - self.warmup_start_lr) / self.warmup_epochs
        return epoch * slope + self.warmup_start_lr


def build_lr(cfg, updates_per_epoch, epochs=None, iters_per_epoch=None):
    """Build the schedule named by ``cfg['name']`` (or a constant for a plain number).

    Args:
        cfg: ``OPTIMIZER.learning_rate``: a number, or a mapping with ``name`` and its keys.
            ``MultiStepDecay``: ``learning_rate``, ``milestones`` (epochs), ``gamma``.
            ``WarmupCosine``: ``learning_rate``, ``warmup_steps`` or ``warmup_epochs``,
            optional ``total_steps`` (default ``epochs * updates_per_epoch``), ``warmup_start_lr``,
            ``min_lr``.
            ``CustomWarmupCosineDecay``: ``warmup_start_lr``, ``warmup_epochs``, ``cosine_base_lr``,
            ``max_epoch`` and ``iter_step`` (True: stepped after every training iteration, ``num_iters =
            iters_per_epoch``; False or absent: once per epoch, ``num_iters = 1``).
        updates_per_epoch: optimizer updates per epoch (after gradient accumulation).
        epochs: planned number of epochs (WarmupCosine's default ``total_steps``).
        iters_per_epoch: training iterations per epoch and process (batches; with gradient accumulation, every
            micro-batch counts): PaddleVideo's ``len(train_loader)``. Default ``updates_per_epoch``.
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
        if name == "CustomWarmupCosineDecay":
            per_iter = bool(kwargs.pop("iter_step", False))
            kwargs["num_iters"] = (iters_per_epoch or updates_per_epoch) if per_iter else 1
            sched = CustomWarmupCosineDecay(**kwargs)
            sched.step_unit = "iter" if per_iter else "epoch"
            return sched
        if name == "MultiStepDecay":
            return MultiStepDecay(learning_rate=kwargs.pop("learning_rate"), milestones=list(kwargs.pop("milestones")),
                                  gamma=kwargs.pop("gamma", 0.1), **_no_more(kwargs, name))
        if name == "WarmupCosine":
            if "warmup_epochs" in kwargs:
                kwargs["warmup_steps"] = int(round(kwargs.pop("warmup_epochs") * updates_per_epoch))
            kwargs.setdefault("warmup_steps", 0)
            kwargs.setdefault("total_steps", (epochs or 0) * updates_per_epoch)
            return WarmupCosine(**kwargs)
    except KeyError as err:
        raise ConfigError(f"OPTIMIZER.learning_rate ({name}) needs the key {err}") from None
    except TypeError as err:
        raise ConfigError(f"OPTIMIZER.learning_rate ({name}): {err}") from None
    raise ConfigError(f"OPTIMIZER.learning_rate.name '{name}' is unknown; use MultiStepDecay, WarmupCosine or "
                      "CustomWarmupCosineDecay")


def _no_more(kwargs, name):
    if kwargs:
        raise ConfigError(f"OPTIMIZER.learning_rate ({name}) has unknown keys {sorted(kwargs)}")
    return {}
