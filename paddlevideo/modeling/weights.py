"""Loading weights into the model: image-ViT conversion (``pretrained``) and full checkpoints (``-w``).

An image ViT (PaddleClas naming, no ``backbone.`` prefix) is converted for the clip model; a full
checkpoint must match the model's keys and shapes exactly, except for ``time_embed`` and ``pos_embed``,
which are resized so a model fine-tuned at 8 frames / 224 px loads at 16 / 448. An optimizer state
(``.pdopt``) given in place of weights is refused with the ``.pdparams`` to pass instead.
"""

import os
import re

import paddle

from ..common.errors import InputError
from ..common.logger import get_logger
from ..common.save_load import load
from .embed_resize import resize_pos_embed, resize_time_embed

# Accumulator names Paddle's optimizers give their state (``linear_0.w_0_velocity_0``, ``..._moment1_0``).
_OPTIMIZER_KEY = re.compile(r"_(velocity|moment1|moment2|beta1_pow_acc|beta2_pow_acc|moment|mean_square)_\d+$")
_RESIZABLE = {
    "time_embed": lambda value, shape: resize_time_embed(value, shape[1]),
    "pos_embed": lambda value, shape: resize_pos_embed(value, shape[1] - 1),
}


class CheckpointError(InputError):
    """A checkpoint does not fit the model; the message names every offending key."""


def _as_tensor(value):
    return value if isinstance(value, paddle.Tensor) else paddle.to_tensor(value)


def _shape(value):
    return list(value.shape)


def _refuse_optimizer_state(path, state=None):
    """A CheckpointError naming the ``.pdparams`` to pass when ``path`` / ``state`` is an optimizer state
    (this project's ``{'optimizer': ...}`` or PaddleVideo's bare accumulators and ``LR_Scheduler``).
    With ``state`` None only the file name is judged (before reading a file that may not even load)."""
    state = state if state is not None else {}
    accumulators = [key for key in state if _OPTIMIZER_KEY.search(key)]
    if not (path.endswith(".pdopt") or isinstance(state.get("optimizer"), dict) or "LR_Scheduler" in state
            or (accumulators and len(accumulators) == len(state))):
        return
    weights = (path[: -len(".pdopt")] if path.endswith(".pdopt") else os.path.splitext(path)[0]) + ".pdparams"
    hint = f"pass '{weights}'" if os.path.isfile(weights) else f"pass the model weights saved with it ('{weights}')"
    raise CheckpointError(f"checkpoint '{path}' is an optimizer state (training momentum and learning-rate "
                          f"schedule), not model weights; {hint} instead")


def convert_image_vit(state, backbone):
    """Map an image-ViT state dict onto ``backbone`` (a ``VisionTransformer``).

    Drops ``head.*``; resizes the ``pos_embed`` grid (bilinear, corner-aligned; CLS position kept);
    for divided attention copies ``blocks.i.attn.*`` -> ``blocks.i.temporal_attn.*`` and
    ``blocks.i.norm1.*`` -> ``blocks.i.temporal_norm1.*`` unless the checkpoint has them.
    ``time_embed`` and ``temporal_fc`` are not in an image ViT and keep their initial values.
    """
    converted = {k: _as_tensor(v) for k, v in state.items() if not k.startswith("head.")}
    if "pos_embed" in converted:
        converted["pos_embed"] = resize_pos_embed(converted["pos_embed"], backbone.patch_embed.num_patches)
    if backbone.attention_type == "divided_space_time":
        for key in list(converted):
            match = re.match(r"^(blocks\.\d+\.)(attn|norm1)\.(.+)$", key)
            if match:
                prefix, part, rest = match.groups()
                target = f"{prefix}temporal_{part}.{rest}" if part == "attn" else f"{prefix}temporal_norm1.{rest}"
                converted.setdefault(target, converted[key])
    return converted


def load_pretrained_vit(backbone, path, trust_pickle=False):
    """Load the image ViT at ``path`` into ``backbone``; missing/unexpected keys are logged by name.
    The file is read by ``utils.save_load.load`` (plain data only unless ``trust_pickle``).

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
        CheckpointError: a key present in both has a different shape.
    """
    logger = get_logger()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained image ViT '{path}' not found; download it there or set "
                                "MODEL.backbone.pretrained to another path (\"\" trains from scratch)")
    _refuse_optimizer_state(path)
    state = load(path, trust_pickle=trust_pickle)
    _refuse_optimizer_state(path, state)
    if state and all(key.startswith(("backbone.", "head.")) for key in state):
        # A full recognizer checkpoint given as ``pretrained``: use its backbone part.
        state = {key[len("backbone."):]: value for key, value in state.items() if key.startswith("backbone.")}
    state = convert_image_vit(state, backbone)
    own = backbone.state_dict()
    mismatched = [f"{k}: checkpoint {_shape(v)} vs model {_shape(own[k])}"
                  for k, v in state.items() if k in own and _shape(v) != _shape(own[k])]
    if mismatched:
        raise CheckpointError(f"pretrained '{path}' does not fit the backbone: shape mismatch in "
                              + "; ".join(mismatched))
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    # Pass the kept tensors too, so paddle does not warn about each key absent from the file.
    backbone.set_state_dict({**own, **{k: v for k, v in state.items() if k in own}})
    logger.info("loaded pretrained image ViT '%s' (%d tensors)", path, len(state) - len(unexpected))
    if missing:
        logger.info("pretrained: keys kept at their initial values: %s", ", ".join(missing))
    if unexpected:
        logger.warning("pretrained: keys ignored (not in the model): %s", ", ".join(unexpected))


def load_checkpoint(model, path_or_state_dict, trust_pickle=False):
    """Load a full checkpoint (``model.state_dict()`` naming) into ``model`` with exact checks.

    Only ``*time_embed`` (other T) and ``*pos_embed`` (other grid) may differ in shape: they are
    resized (nearest in time; bilinear corner-aligned grid) and the resize is logged. A path is read by
    ``utils.save_load.load``: plain data only, unless ``trust_pickle`` (``--trust-pickle``).

    Raises:
        FileNotFoundError / ValueError: unreadable file (from ``save_load.load``); ``UnsafePickleError`` (a
            ValueError too): the file asks to run code or build objects a checkpoint never holds.
        CheckpointError: one message naming all missing, unexpected and shape-mismatched keys; or the file is
            an optimizer state (``.pdopt``), and the message names the ``.pdparams`` to pass.
    """
    logger = get_logger()
    if isinstance(path_or_state_dict, dict):
        source, state = "state dict", path_or_state_dict
    else:
        _refuse_optimizer_state(str(path_or_state_dict))
        source, state = f"checkpoint '{path_or_state_dict}'", load(path_or_state_dict, trust_pickle=trust_pickle)
        _refuse_optimizer_state(str(path_or_state_dict), state)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched, fitted = [], {}
    for key in sorted(set(own) & set(state)):
        value, want = _as_tensor(state[key]), _shape(own[key])
        if _shape(value) != want:
            leaf = key.rsplit(".", 1)[-1]
            if leaf in _RESIZABLE and value.ndim == 3 and _shape(value)[2] == want[2]:
                logger.info("%s: resizing %s from %s to %s", source, key, _shape(value), want)
                value = _RESIZABLE[leaf](value, want)
            else:
                mismatched.append(f"{key}: checkpoint {_shape(value)} vs model {want}")
                continue
        fitted[key] = value
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append("missing keys: " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            parts.append("shape mismatch: " + "; ".join(mismatched))
        raise CheckpointError(f"{source} does not fit the model ({' | '.join(parts)}); "
                              "check MODEL settings (num_classes, embed_dim, depth, attention_type)")
    model.set_state_dict(fitted)
    logger.info("loaded %s (%d tensors)", source, len(fitted))
