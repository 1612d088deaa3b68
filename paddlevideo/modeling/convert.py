"""Key mapping between the PyTorch TimeSformer releases and this model's checkpoints.

Two source formats are supported, in both directions:

- ``fb``: the original release's ``.pyth`` files (a torch pickle whose ``model_state`` holds
  ``model.cls_token``, ``model.blocks.N.attn.qkv.weight``, ..., ``model.head.weight``);
- ``hf``: a ``transformers`` ``TimesformerForVideoClassification`` folder (``config.json`` plus
  ``model.safetensors`` or ``pytorch_model.bin``).

Both share our tensor semantics (packed ``qkv`` with q, k, v and heads contiguous; patch tokens
spatial-major, time-minor; exact GELU), so conversion is renaming plus one layout change: torch
``Linear`` weights are ``[out, in]``, Paddle's are ``[in, out]``.

Everything here works on numpy arrays. ``torch`` is imported only inside the readers of torch
pickles (``.pyth`` / ``.bin``); safetensors files are read with ``safetensors.numpy``.
"""

import glob
import json
import os
import re

import numpy as np

from ..utils.logger import get_logger

FORMATS = ("fb", "hf")

# Top-level parameters: (ours, hf, fb) module paths; a parameter is the path itself (tokens,
# embeddings) or the path + ".weight" / ".bias".
_TOP = (
    ("backbone.cls_token", "timesformer.embeddings.cls_token", "model.cls_token"),
    ("backbone.pos_embed", "timesformer.embeddings.position_embeddings", "model.pos_embed"),
    ("backbone.time_embed", "timesformer.embeddings.time_embeddings", "model.time_embed"),
    ("backbone.patch_embed.proj", "timesformer.embeddings.patch_embeddings.projection", "model.patch_embed.proj"),
    ("backbone.norm", "timesformer.layernorm", "model.norm"),
    ("head.fc", "classifier", "model.head"),
)
# Per-block modules, relative to the block prefix of each format.
_BLOCK = (
    ("norm1", "layernorm_before", "norm1"),
    ("attn.qkv", "attention.attention.qkv", "attn.qkv"),
    ("attn.proj", "attention.output.dense", "attn.proj"),
    ("temporal_norm1", "temporal_layernorm", "temporal_norm1"),
    ("temporal_attn.qkv", "temporal_attention.attention.qkv", "temporal_attn.qkv"),
    ("temporal_attn.proj", "temporal_attention.output.dense", "temporal_attn.proj"),
    ("temporal_fc", "temporal_dense", "temporal_fc"),
    ("norm2", "layernorm_after", "norm2"),
    ("mlp.fc1", "intermediate.dense", "mlp.fc1"),
    ("mlp.fc2", "output.dense", "mlp.fc2"),
)
_BLOCK_PREFIX = {"paddle": "backbone.blocks.", "hf": "timesformer.encoder.layer.", "fb": "model.blocks."}
_COLUMN = {"paddle": 0, "hf": 1, "fb": 2}
# Modules (our names) that are Linear layers: their 2-D weights change layout between frameworks.
_LINEAR = {"attn.qkv", "attn.proj", "temporal_attn.qkv", "temporal_attn.proj", "temporal_fc",
           "mlp.fc1", "mlp.fc2", "head.fc"}
_PARAM_SUFFIXES = ("", ".weight", ".bias")


class ConversionError(ValueError):
    """A checkpoint cannot be converted; the message names the file or keys and what to do."""


def _check_format(fmt):
    if fmt not in FORMATS:
        raise ConversionError(f"unknown checkpoint format '{fmt}'; use one of {', '.join(FORMATS)}")


def _rename(key, src, dst):
    """Map one parameter name from format ``src`` to ``dst``.

    Returns ``(new_key, our_module)`` or ``None`` when the key is not a TimeSformer parameter.
    """
    s, d = _COLUMN[src], _COLUMN[dst]
    for row in _TOP:
        for suffix in _PARAM_SUFFIXES:
            if key == row[s] + suffix:
                return row[d] + suffix, row[0]
    prefix = _BLOCK_PREFIX[src]
    match = re.match(re.escape(prefix) + r"(\d+)\.(.+)$", key)
    if match:
        index, rest = match.groups()
        for row in _BLOCK:
            for suffix in (".weight", ".bias"):
                if rest == row[s] + suffix:
                    return f"{_BLOCK_PREFIX[dst]}{index}.{row[d]}{suffix}", row[0]
    return None


def normalize_source_keys(state, fmt):
    """Undo harmless naming variants so every key carries the format's full prefix.

    ``fb``: a ``module.`` prefix (a DDP-wrapped save) is dropped; bare ``VisionTransformer`` keys
    (``blocks.0...``) get ``model.``. ``hf``: a ``TimesformerModel`` save (no classifier, keys
    ``embeddings.*`` / ``encoder.*`` / ``layernorm.*``) gets ``timesformer.``.
    """
    _check_format(fmt)
    out = {}
    for key, value in state.items():
        new = key
        if fmt == "fb":
            if new.startswith("module."):
                new = new[len("module."):]
            if not new.startswith("model."):
                new = "model." + new
        elif re.match(r"(embeddings|encoder|layernorm)\.", new):
            new = "timesformer." + new
        out[new] = value
    return out


def _relayout(value, module, key):
    """Transpose Linear weights between torch ``[out, in]`` and Paddle ``[in, out]``."""
    if module in _LINEAR and key.endswith(".weight"):
        if value.ndim != 2:
            raise ConversionError(f"'{key}' should be a 2-D Linear weight but has shape {list(value.shape)}")
        return np.ascontiguousarray(value.T), True
    return value, False


def to_paddle(state, fmt):
    """Convert a source state dict (``{name: np.ndarray}``) in format ``fb`` or ``hf`` to ours.

    Returns:
        ``(converted, report)``: ``converted`` maps our keys (``backbone.*``, ``head.fc.*``) to
        float32 arrays; ``report`` is one dict per key: ``src``, ``dst``, ``src_shape``,
        ``dst_shape``, ``transposed``.
    Raises:
        ConversionError: naming every key with no counterpart (nothing is silently dropped).
    """
    state = normalize_source_keys(state, fmt)
    converted, report, unmapped = {}, [], []
    for key in sorted(state):
        mapped = _rename(key, fmt, "paddle")
        if mapped is None:
            unmapped.append(key)
            continue
        new_key, module = mapped
        value = np.asarray(state[key])
        if np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float32, copy=False)
        new_value, transposed = _relayout(value, module, key)
        converted[new_key] = new_value
        report.append({"src": key, "dst": new_key, "src_shape": list(value.shape),
                       "dst_shape": list(new_value.shape), "transposed": transposed})
    if unmapped:
        raise ConversionError(f"{len(unmapped)} {fmt} key(s) have no TimeSformer counterpart: "
                              f"{', '.join(unmapped)}; is this a divided/joint/space-only TimeSformer checkpoint?")
    return converted, report


def from_paddle(state, fmt):
    """Inverse of :func:`to_paddle`: our state dict (numpy or paddle tensors) to ``fb``/``hf`` names.

    Returns ``{name: np.ndarray}`` with torch layouts (Linear weights ``[out, in]``).
    """
    _check_format(fmt)
    out, unmapped = {}, []
    for key, value in state.items():
        mapped = _rename(key, "paddle", fmt)
        if mapped is None:
            unmapped.append(key)
            continue
        new_key, module = mapped
        array = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        out[new_key], _ = _relayout(array, module, key)
    if unmapped:
        raise ConversionError(f"{len(unmapped)} key(s) are not TimeSformer parameters: {', '.join(sorted(unmapped))}")
    return out


# ---------------------------------------------------------------- model settings

def infer_backbone_settings(state):
    """Derive ``MODEL`` settings from a converted (our naming) state dict's shapes.

    ``num_heads`` is not visible in any shape: it is taken as ``embed_dim // 64`` (every released
    TimeSformer uses 64-wide heads); pass a config to override it.

    Returns ``{"MODEL.backbone.embed_dim": 768, ...}`` (dotted config paths -> values).
    """
    try:
        embed_dim = int(state["backbone.cls_token"].shape[-1])
        patch = state["backbone.patch_embed.proj.weight"]
        pos_len = int(state["backbone.pos_embed"].shape[1])
    except KeyError as err:
        raise ConversionError(f"cannot infer the model settings: key {err} is missing; pass -c CONFIG") from err
    blocks = [re.match(r"backbone\.blocks\.(\d+)\.", k) for k in state]
    depth = 1 + max((int(m.group(1)) for m in blocks if m), default=-1)
    side = int(round((pos_len - 1) ** 0.5))
    if side * side != pos_len - 1:
        raise ConversionError(f"pos_embed has {pos_len - 1} patch positions (not a square grid); pass -c CONFIG")
    if "backbone.blocks.0.temporal_attn.qkv.weight" in state:
        attention = "divided_space_time"
    elif "backbone.time_embed" in state:
        attention = "joint_space_time"
    else:
        attention = "space_only"
    settings = {
        "MODEL.backbone.embed_dim": embed_dim,
        "MODEL.backbone.patch_size": int(patch.shape[-1]),
        "MODEL.backbone.in_channels": int(patch.shape[1]),
        "MODEL.backbone.img_size": side * int(patch.shape[-1]),
        "MODEL.backbone.depth": depth,
        "MODEL.backbone.num_heads": max(embed_dim // 64, 1),
        "MODEL.backbone.mlp_ratio": state["backbone.blocks.0.mlp.fc1.weight"].shape[1] / embed_dim,
        "MODEL.backbone.qkv_bias": "backbone.blocks.0.attn.qkv.bias" in state,
        "MODEL.backbone.attention_type": attention,
        "MODEL.head.in_channels": embed_dim,
    }
    if "backbone.time_embed" in state:
        settings["MODEL.backbone.num_seg"] = int(state["backbone.time_embed"].shape[1])
    if "head.fc.weight" in state:
        settings["MODEL.head.num_classes"] = int(state["head.fc.weight"].shape[1])
    return settings


def settings_from_hf_config(hf_config, path="config.json"):
    """Map a ``transformers`` ``TimesformerConfig`` (dict from ``config.json``) to ``MODEL`` settings.

    Raises:
        ConversionError: a setting our model does not implement (e.g. a GELU variant other than
            exact ``gelu``) or a non-square image / patch.
    """
    def get(name, default=None):
        if name not in hf_config and default is None:
            raise ConversionError(f"'{path}' has no '{name}'; is it a TimeSformer config.json?")
        return hf_config.get(name, default)

    if get("model_type", "timesformer") != "timesformer":
        raise ConversionError(f"'{path}' describes a '{hf_config['model_type']}' model, not 'timesformer'")
    act = get("hidden_act", "gelu")
    if act != "gelu":
        raise ConversionError(f"'{path}': hidden_act '{act}' is not supported (only exact 'gelu', as released)")
    sizes = {}
    for name in ("image_size", "patch_size"):
        value = get(name)
        if isinstance(value, (list, tuple)):
            if len(set(value)) != 1:
                raise ConversionError(f"'{path}': non-square {name} {value} is not supported")
            value = value[0]
        sizes[name] = int(value)
    hidden, inner = int(get("hidden_size")), int(get("intermediate_size"))
    num_labels = len(hf_config["id2label"]) if "id2label" in hf_config else int(get("num_labels", 2))
    return {
        "MODEL.backbone.img_size": sizes["image_size"],
        "MODEL.backbone.patch_size": sizes["patch_size"],
        "MODEL.backbone.in_channels": int(get("num_channels", 3)),
        "MODEL.backbone.embed_dim": hidden,
        "MODEL.backbone.depth": int(get("num_hidden_layers")),
        "MODEL.backbone.num_heads": int(get("num_attention_heads")),
        "MODEL.backbone.mlp_ratio": inner / hidden,
        "MODEL.backbone.qkv_bias": bool(get("qkv_bias", True)),
        "MODEL.backbone.epsilon": float(get("layer_norm_eps", 1e-6)),
        "MODEL.backbone.num_seg": int(get("num_frames")),
        "MODEL.backbone.attention_type": get("attention_type", "divided_space_time"),
        "MODEL.head.num_classes": num_labels,
        "MODEL.head.in_channels": hidden,
    }


def settings_as_overrides(settings):
    """``{"A.b": 1}`` -> ``["A.b=1"]`` for :func:`paddlevideo.utils.get_config`.

    ``num_seg`` and the image size are also applied to the test-time settings that must agree
    with the model (``runtime_cfg.test.num_seg``, ``INFERENCE``).
    """
    overrides = [f"{k}={_yaml_scalar(v)}" for k, v in settings.items()]
    if "MODEL.backbone.num_seg" in settings:
        num_seg = settings["MODEL.backbone.num_seg"]
        overrides += [f"MODEL.runtime_cfg.test.num_seg={num_seg}", f"INFERENCE.num_seg={num_seg}"]
    if "MODEL.backbone.img_size" in settings:
        overrides.append(f"INFERENCE.target_size={settings['MODEL.backbone.img_size']}")
    return overrides


def _yaml_scalar(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ---------------------------------------------------------------- readers

def _torch_load(path, trust_pickle):
    try:
        import torch
    except ImportError as err:
        raise ConversionError(f"reading '{path}' needs PyTorch (it is a torch pickle): install a CPU build, "
                              "e.g. pip install torch==2.13.0") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as err:  # torch raises pickle / runtime errors of several types
        hint = ("" if trust_pickle else
                "; if you trust the file, retry with --trust-pickle (it may run code from the file)")
        raise ConversionError(f"'{path}' could not be read as a torch checkpoint "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}){hint}") from err


def _tensors_to_numpy(state, path):
    out = {}
    for key, value in state.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu()
            if value.is_floating_point():
                value = value.float()
            out[key] = value.numpy()
        elif isinstance(value, np.ndarray):
            out[key] = value
        else:
            raise ConversionError(f"'{path}': entry '{key}' is a {type(value).__name__}, not a tensor")
    return out


def read_fb_checkpoint(path, trust_pickle=False):
    """Read an original-release ``.pyth`` into ``{name: np.ndarray}`` (keys as stored, ``model.*``).

    Accepts the release layout (``{"model_state": {...}, "epoch", "cfg", ...}``), a ``state_dict``
    entry, or a bare state dict.
    """
    if not os.path.isfile(path):
        raise ConversionError(f"checkpoint '{path}' not found")
    obj = _torch_load(path, trust_pickle)
    if isinstance(obj, dict):
        for entry in ("model_state", "state_dict", "model"):
            if isinstance(obj.get(entry), dict):
                obj = obj[entry]
                break
    if not isinstance(obj, dict) or not obj:
        raise ConversionError(f"'{path}' holds no state dict (expected a 'model_state' entry)")
    return _tensors_to_numpy(obj, path)


def read_hf_folder(folder, trust_pickle=False):
    """Read a ``transformers`` TimeSformer folder.

    Returns ``(state, hf_config)``: tensors from ``model.safetensors`` (or its sharded index, read
    without torch) or else ``pytorch_model.bin`` (needs torch), and the parsed ``config.json``.
    """
    if not os.path.isdir(folder):
        raise ConversionError(f"'{folder}' is not a folder; --from hf expects a save_pretrained folder "
                              "(config.json + model.safetensors)")
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise ConversionError(f"'{config_path}' not found; --from hf expects a save_pretrained folder")
    with open(config_path, encoding="utf-8") as f:
        try:
            hf_config = json.load(f)
        except json.JSONDecodeError as err:
            raise ConversionError(f"'{config_path}' is not valid JSON: {err}") from err
    shards = sorted(glob.glob(os.path.join(folder, "model*.safetensors")))
    if shards:
        try:
            from safetensors.numpy import load_file
        except ImportError as err:
            raise ConversionError(f"reading '{shards[0]}' needs the safetensors package (no torch): "
                                  "pip install safetensors") from err
        state = {}
        for shard in shards:
            state.update(load_file(shard))
        return state, hf_config
    bins = sorted(glob.glob(os.path.join(folder, "pytorch_model*.bin")))
    if not bins:
        raise ConversionError(f"'{folder}' has neither model.safetensors nor pytorch_model.bin")
    state = {}
    for path in bins:
        state.update(_tensors_to_numpy(_torch_load(path, trust_pickle), path))
    return state, hf_config


def log_report(report, logger=None):
    """Log one line per mapped key: ``src [shape] -> dst [shape] (transposed)``."""
    logger = logger or get_logger()
    for row in report:
        note = " (transposed)" if row["transposed"] else ""
        logger.info("%s %s -> %s %s%s", row["src"], row["src_shape"], row["dst"], row["dst_shape"], note)


# ---------------------------------------------------------------- end to end

# Settings a loaded checkpoint may differ in: load_checkpoint resizes time_embed / pos_embed.
RESIZABLE_SETTINGS = ("MODEL.backbone.num_seg", "MODEL.backbone.img_size")
# Not visible in any fb tensor shape (see infer_backbone_settings): a config's value wins.
GUESSED_SETTINGS = {"fb": ("MODEL.backbone.num_heads",), "hf": ()}


def read_source(src, fmt, trust_pickle=False):
    """Read and convert a checkpoint: ``(state, report, settings)``.

    ``state``/``report`` as :func:`to_paddle`; ``settings`` are the ``MODEL`` settings the
    checkpoint implies (from ``config.json`` for ``hf``, from tensor shapes for ``fb``).
    """
    _check_format(fmt)
    if fmt == "hf":
        raw, hf_config = read_hf_folder(src, trust_pickle)
        state, report = to_paddle(raw, fmt)
        settings = settings_from_hf_config(hf_config, os.path.join(src, "config.json"))
        if settings["MODEL.backbone.attention_type"] != "divided_space_time":
            # transformers' space_only classifies every frame separately (no average over T), so
            # only the weights, not the outputs, correspond for that type.
            get_logger().warning("'%s' uses attention_type %s: weights are converted, but output parity "
                                 "is only verified for divided_space_time", src,
                                 settings["MODEL.backbone.attention_type"])
    else:
        state, report = to_paddle(read_fb_checkpoint(src, trust_pickle), fmt)
        settings = infer_backbone_settings(state)
    return state, report, settings


def _config_value(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def compare_settings(cfg, settings, fmt):
    """Check a user config against the checkpoint's settings.

    Returns ``(conflicts, resized)``: lists of ``"key: config X vs checkpoint Y"``. Conflicts
    would load wrongly or not at all; resized settings are handled by the embedding resize.
    """
    conflicts, resized = [], []
    for key, want in settings.items():
        have = _config_value(cfg, key)
        if key in GUESSED_SETTINGS[fmt]:
            continue
        if key == "MODEL.backbone.attention_type" and have is None:
            have = "divided_space_time"
        same = have == want or (isinstance(want, float) and have is not None and abs(float(have) - want) < 1e-12)
        if not same:
            (resized if key in RESIZABLE_SETTINGS else conflicts).append(f"{key}: config {have} vs checkpoint {want}")
    return conflicts, resized


def verify_in_model(state, model_cfg):
    """Build the model from ``model_cfg`` (``cfg.MODEL``) and load ``state`` with exact key checks.

    Returns the loaded model (eval mode). Raises ``CheckpointError`` naming missing, unexpected or
    mismatched keys.
    """
    import copy

    import paddle

    from .builder import build_model
    from .weights import load_checkpoint

    model_cfg = copy.deepcopy(model_cfg)
    model_cfg["backbone"]["pretrained"] = ""  # the converted weights replace any image-ViT init
    model = build_model(model_cfg)
    load_checkpoint(model, {k: paddle.to_tensor(v) for k, v in state.items()})
    model.eval()
    return model
