"""Mixed-precision settings for training, chosen in one place so they can be tested without a GPU."""

from dataclasses import dataclass

from ..common.errors import ConfigError

AMP_LEVELS = ("O1", "O2")


@dataclass(frozen=True)
class AmpSettings:
    """What the trainer does for ``--amp``.

    Attributes:
        enabled: run the forward under ``paddle.amp.auto_cast``.
        level: ``"O1"`` (fp16 for white-listed ops, fp32 weights) or ``"O2"`` (fp16 weights).
        dtype: compute dtype under autocast.
        use_scaler: dynamic loss scaling with ``paddle.amp.GradScaler``.
        init_loss_scaling: initial loss scale.
        decorate: call ``paddle.amp.decorate`` on model and optimizer (O2).
        master_weight: keep fp32 master weights in the optimizer (O2).
        warning: a message to log when the request cannot be honoured (e.g. on CPU), else ``""``.
    """

    enabled: bool = False
    level: str = "O0"
    dtype: str = "float32"
    use_scaler: bool = False
    init_loss_scaling: float = 1.0
    decorate: bool = False
    master_weight: bool = False
    warning: str = ""


def amp_settings(requested, level="O1", device=None):
    """Return the :class:`AmpSettings` for ``--amp`` / ``--amp_level`` on ``device``.

    Args:
        requested: ``--amp`` was given.
        level: ``"O1"`` or ``"O2"``.
        device: a paddle device string (``"cpu"``, ``"gpu:0"``); default ``paddle.get_device()``.
    Raises:
        ConfigError: unknown level.
    """
    if level not in AMP_LEVELS:
        raise ConfigError(f"--amp_level must be one of {', '.join(AMP_LEVELS)}, got '{level}'")
    if not requested:
        return AmpSettings()
    if device is None:
        import paddle

        device = paddle.get_device()
    if not str(device).startswith("gpu"):
        return AmpSettings(warning=f"--amp needs a GPU; device is '{device}' and Paddle has no CPU mixed "
                                   "precision, so this run trains in fp32")
    # fp16 on GPU: dynamic loss scaling keeps small gradients from underflowing; O2 also keeps fp32
    # master weights so tiny updates are not lost when added to fp16 weights.
    return AmpSettings(enabled=True, level=level, dtype="float16", use_scaler=True,
                       init_loss_scaling=2.0 ** 15, decorate=level == "O2", master_weight=level == "O2")
