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

from ..common.errors import InputError
from ..common.logger import get_logger

FORMATS = ("fb", "hf")
# What the original release's code fixes rather than stores: 64-wide attention heads (ViT-B: 768 / 12) and
# LayerNorm eps 1e-6. A config that differs loads the fb weights without complaint and computes other logits.
RELEASE_HEAD_WIDTH = 64
RELEASE_EPSILON = 1e-6

# Module paths, ours -> transformers' (hf): the top-level modules, then the modules of one block (relative to
# the block prefix of each format). A parameter is the path itself (tokens, embeddings) or the path + ".weight" /
# ".bias". The original release (fb) keeps our names but for the prefixes: see _fb_top.
_HF_TOP = {
    "backbone.cls_token": "timesformer.embeddings.cls_token",
    "backbone.pos_embed": "timesformer.embeddings.position_embeddings",
    "backbone.time_embed": "timesformer.embeddings.time_embeddings",
    "backbone.patch_embed.proj": "timesformer.embeddings.patch_embeddings.projection",
    "backbone.norm": "timesformer.layernorm",
    "head.fc": "classifier",
}
_HF_BLOCK = {
    "norm1": "layernorm_before",
    "attn.qkv": "attention.attention.qkv",
    "attn.proj": "attention.output.dense",
    "temporal_norm1": "temporal_layernorm",
    "temporal_attn.qkv": "temporal_attention.attention.qkv",
    "temporal_attn.proj": "temporal_attention.output.dense",
    "temporal_fc": "temporal_dense",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
_BLOCK_PREFIX = {"paddle": "backbone.blocks.", "hf": "timesformer.encoder.layer.", "fb": "model.blocks."}


def _fb_top(module):
    """The original release's path for one of our top-level modules: our backbone is its ``VisionTransformer``
    module for module (so a block's modules have our names too), saved as ``model`` with the classifier inside
    (``model.head``; ours: ``head.fc``)."""
    return "model.head" if module == "head.fc" else "model." + module[len("backbone."):]


# {format: {our module path: that format's}}, in the tables' order.
_TOP = {"paddle": {m: m for m in _HF_TOP}, "hf": _HF_TOP, "fb": {m: _fb_top(m) for m in _HF_TOP}}
_BLOCK = {"paddle": {m: m for m in _HF_BLOCK}, "hf": _HF_BLOCK, "fb": {m: m for m in _HF_BLOCK}}

# Modules (our names) that are Linear layers: their 2-D weights change layout between frameworks.
_LINEAR = {"attn.qkv", "attn.proj", "temporal_attn.qkv", "temporal_attn.proj", "temporal_fc",
           "mlp.fc1", "mlp.fc2", "head.fc"}
_PARAM_SUFFIXES = ("", ".weight", ".bias")


class ConversionError(InputError):
    """A checkpoint cannot be converted; the message names the file or keys and what to do."""


def _some(names, limit=8):
    """``a, b, c`` or ``a, b, ... (40 in all)``: enough names to recognise, on one line."""
    names = list(names)
    return ", ".join(names) if len(names) <= limit else f"{', '.join(names[:limit])}, ... ({len(names)} in all)"


def _check_format(fmt):
    if fmt not in FORMATS:
        raise ConversionError(f"unknown checkpoint format '{fmt}'; use one of {', '.join(FORMATS)}")


def _rename(key, src, dst):
    """Map one parameter name from format ``src`` to ``dst``.

    Returns ``(new_key, our_module)`` or ``None`` when the key is not a TimeSformer parameter.
    """
    for module, name in _TOP[src].items():
        for suffix in _PARAM_SUFFIXES:
            if key == name + suffix:
                return _TOP[dst][module] + suffix, module
    prefix = _BLOCK_PREFIX[src]
    match = re.match(re.escape(prefix) + r"(\d+)\.(.+)$", key)
    if match:
        index, rest = match.groups()
        for module, name in _BLOCK[src].items():
            for suffix in (".weight", ".bias"):
                if rest == name + suffix:
                    return f"{_BLOCK_PREFIX[dst]}{index}.{_BLOCK[dst][module]}{suffix}", module
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
        other = [f for f in FORMATS if f != fmt and any(_rename(k, f, "paddle") for k in state)]
        hint = (f"; its keys look like --from {other[0]}" if other and not converted
                else "; is this a divided/joint/space-only TimeSformer checkpoint?")
        raise ConversionError(f"{len(unmapped)} {fmt} key(s) have no TimeSformer counterpart: "
                              f"{_some(unmapped)}{hint}")
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

def infer_backbone_settings(state, num_heads=None, epsilon=None):
    """Derive ``MODEL`` settings from a converted (our naming) state dict's shapes.

    Two settings are in no tensor shape; they take the values every original-release TimeSformer uses
    (:data:`RELEASE_HEAD_WIDTH`-wide heads, LayerNorm eps :data:`RELEASE_EPSILON`) unless ``num_heads`` /
    ``epsilon`` say what the source model really used.

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
        "MODEL.backbone.num_heads": num_heads or max(embed_dim // RELEASE_HEAD_WIDTH, 1),
        "MODEL.backbone.epsilon": RELEASE_EPSILON if epsilon is None else float(epsilon),
        "MODEL.backbone.mlp_ratio": state["backbone.blocks.0.mlp.fc1.weight"].shape[1] / embed_dim,
        "MODEL.backbone.qkv_bias": "backbone.blocks.0.attn.qkv.bias" in state,
        "MODEL.backbone.attention_type": attention,
        "MODEL.head.in_channels": embed_dim,
    }
    if embed_dim % settings["MODEL.backbone.num_heads"]:
        raise ConversionError(f"embed_dim {embed_dim} is not divisible by {settings['MODEL.backbone.num_heads']} "
                              "heads; give the source model's head count")
    if "backbone.time_embed" in state:
        settings["MODEL.backbone.num_seg"] = int(state["backbone.time_embed"].shape[1])
    if "head.fc.weight" in state:
        settings["MODEL.head.num_classes"] = int(state["head.fc.weight"].shape[1])
    return settings


def _typed(value, kind, name, path):
    """``value`` as a positive ``kind`` (int or float), or an error naming the key of ``path``."""
    try:
        converted = None if isinstance(value, bool) else kind(value)
    except (TypeError, ValueError):
        converted = None
    if converted is None or not converted > 0 or (kind is int and converted != value and not isinstance(value, str)):
        raise ConversionError(f"'{path}': '{name}' is {value!r}, not a positive {kind.__name__}")
    return converted


def settings_from_hf_config(hf_config, path="config.json"):
    """Map a ``transformers`` ``TimesformerConfig`` (dict from ``config.json``) to ``MODEL`` settings.

    Raises:
        ConversionError: a setting our model does not implement (e.g. a GELU variant other than
            exact ``gelu``) or a non-square image / patch.
    """
    if not isinstance(hf_config, dict):
        raise ConversionError(f"'{path}' holds a JSON {type(hf_config).__name__}, not a TimeSformer config object")

    def get(name, default=None, kind=None):
        if name not in hf_config and default is None:
            raise ConversionError(f"'{path}' has no '{name}'; is it a TimeSformer config.json?")
        value = hf_config.get(name, default)
        return value if kind is None else _typed(value, kind, name, path)

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
        sizes[name] = _typed(value, int, name, path)
    hidden, inner = get("hidden_size", kind=int), get("intermediate_size", kind=int)
    num_labels = len(hf_config["id2label"]) if "id2label" in hf_config else get("num_labels", 2, kind=int)
    return {
        "MODEL.backbone.img_size": sizes["image_size"],
        "MODEL.backbone.patch_size": sizes["patch_size"],
        "MODEL.backbone.in_channels": get("num_channels", 3, kind=int),
        "MODEL.backbone.embed_dim": hidden,
        "MODEL.backbone.depth": get("num_hidden_layers", kind=int),
        "MODEL.backbone.num_heads": get("num_attention_heads", kind=int),
        "MODEL.backbone.mlp_ratio": inner / hidden,
        "MODEL.backbone.qkv_bias": bool(get("qkv_bias", True)),
        "MODEL.backbone.epsilon": get("layer_norm_eps", 1e-6, kind=float),
        "MODEL.backbone.num_seg": get("num_frames", kind=int),
        "MODEL.backbone.attention_type": get("attention_type", "divided_space_time"),
        "MODEL.head.num_classes": num_labels,
        "MODEL.head.in_channels": hidden,
    }


def settings_as_overrides(settings):
    """``{"A.b": 1}`` -> ``["A.b=1"]`` for :func:`paddlevideo.config.get_config`.

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

# torch.load(weights_only=True)'s message for a name outside its allow-list
_REFUSED_GLOBAL = re.compile(r"unsupported (?:GLOBAL|global:? GLOBAL) ([\w.]+)", re.IGNORECASE)


def _torch_load(path, trust_pickle):
    try:
        import torch
    except ImportError as err:
        raise ConversionError(f"reading '{path}' needs PyTorch (it is a torch pickle): install a CPU build, "
                              "e.g. pip install torch==2.13.0") from err
    kind = _torch_file_kind(path)
    if kind != "torch":
        raise ConversionError(f"'{path}' is not a torch checkpoint ({kind}); pass the checkpoint file itself "
                              "(download it again if it was cut short)")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as err:  # torch raises pickle / runtime errors of several types
        refused = None if trust_pickle else _REFUSED_GLOBAL.search(str(err))
        if refused:  # torch's restricted unpickler stopped at a name: say so as save_load.load does
            from ..common.safe_pickle import UnsafePickleError, display_name, refusal_message

            raise UnsafePickleError(refusal_message(path, f"call {display_name(refused.group(1))}")) from None
        # --trust-pickle only helps when the safe loader refused an object type; it lets the file run code
        helps = "weights only load failed" in str(err).lower() or "unsupported global" in str(err).lower()
        hint = ("; if you trust the file, retry with --trust-pickle (it may run code from the file)"
                if helps and not trust_pickle else "")
        raise ConversionError(f"'{path}' could not be read as a torch checkpoint "
                              f"({type(err).__name__}: {_first_line(err)}){hint}") from err


def _torch_file_kind(path):
    """``"torch"`` when ``path`` starts like a file ``torch.save`` writes (a zip archive, or a pickle of the
    legacy format), else what it is instead (``"an empty file"``, ``"a text file"``, ``"not a zip archive nor a
    pickle"``)."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # zip (torch >= 1.6) / pickle protocol >= 2
        return "torch"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # not just a character cut at the end of what was read
            return "not a zip archive nor a pickle"
    return "a text file"


def _first_line(err):
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(err).__name__


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
    if os.path.isdir(path):
        raise ConversionError(f"'{path}' is a folder; --from fb expects the original release's .pyth file "
                              "(a transformers save_pretrained folder is --from hf)")
    if not os.path.isfile(path):
        raise ConversionError(f"checkpoint '{path}' not found")
    if path.endswith((".pdparams", ".pdopt")):
        raise ConversionError(f"'{path}' is a Paddle file, not a PyTorch checkpoint: .pdparams need no conversion "
                              "(pass them to -w / MODEL.backbone.pretrained)")
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
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise ConversionError(f"'{config_path}' is not valid JSON: {_first_line(err)}") from err
    shards = sorted(glob.glob(os.path.join(folder, "model*.safetensors")))
    if shards:
        try:
            from safetensors.numpy import load_file
        except ImportError as err:
            raise ConversionError(f"reading '{shards[0]}' needs the safetensors package (no torch): "
                                  "pip install safetensors") from err
        state = {}
        for shard in shards:
            try:
                state.update(load_file(shard))
            except Exception as err:  # safetensors raises its own error type for a truncated or foreign file
                raise ConversionError(f"'{shard}' could not be read as safetensors ({_first_line(err)}); "
                                      "download it again") from err
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
# Settings in no fb tensor shape: the release's values are assumed (see infer_backbone_settings); a source
# model that used others says so (tools/convert_checkpoint.py --source-num-heads / --source-epsilon).
SOURCE_SETTINGS = ("MODEL.backbone.num_heads", "MODEL.backbone.epsilon")
IMPLIED_BY_RELEASE = {"fb": SOURCE_SETTINGS, "hf": ()}


def read_source(src, fmt, trust_pickle=False, source_settings=None):
    """Read and convert a checkpoint: ``(state, report, settings)``.

    ``state``/``report`` as :func:`to_paddle`; ``settings`` are the ``MODEL`` settings the
    checkpoint implies (from ``config.json`` for ``hf``, from tensor shapes and the release's fixed values
    for ``fb``). ``source_settings`` (``{"MODEL.backbone.num_heads": 16, "MODEL.backbone.epsilon": 1e-5}``)
    states those fixed values for an ``fb`` model that used others; for ``hf`` they must agree with
    ``config.json``.
    """
    _check_format(fmt)
    source_settings = {k: v for k, v in (source_settings or {}).items() if v is not None}
    unknown = sorted(set(source_settings) - set(SOURCE_SETTINGS))
    if unknown:
        raise ConversionError(f"source settings {', '.join(unknown)} cannot be given; only "
                              f"{', '.join(SOURCE_SETTINGS)}")
    if fmt == "hf":
        raw, hf_config = read_hf_folder(src, trust_pickle)
        state, report = to_paddle(raw, fmt)
        config_path = os.path.join(src, "config.json")
        settings = settings_from_hf_config(hf_config, config_path)
        for key, value in source_settings.items():
            if not _same(value, settings[key]):
                raise ConversionError(f"'{config_path}' gives {key.rsplit('.', 1)[1]} {settings[key]}, not {value}; "
                                      "a transformers folder states its own settings: drop the override")
        if settings["MODEL.backbone.attention_type"] != "divided_space_time":
            # transformers' space_only classifies every frame separately (no average over T), so
            # only the weights, not the outputs, correspond for that type.
            get_logger().warning("'%s' uses attention_type %s: weights are converted, but output parity "
                                 "is only verified for divided_space_time", src,
                                 settings["MODEL.backbone.attention_type"])
    else:
        state, report = to_paddle(read_fb_checkpoint(src, trust_pickle), fmt)
        settings = infer_backbone_settings(state, source_settings.get("MODEL.backbone.num_heads"),
                                           source_settings.get("MODEL.backbone.epsilon"))
    return state, report, settings


def _config_value(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _model_default(cfg, dotted)
        node = node[part]
    return node


def _model_default(cfg, dotted):
    """The constructor default of a ``MODEL.backbone.*`` / ``MODEL.head.*`` key the config leaves out."""
    import inspect

    from .registry import BACKBONES, HEADS

    parts = dotted.split(".")
    if len(parts) != 3 or parts[0] != "MODEL" or parts[1] not in ("backbone", "head"):
        return None
    section = (cfg.get("MODEL") or {}).get(parts[1]) or {}
    registry = BACKBONES if parts[1] == "backbone" else HEADS
    if section.get("name") not in registry:
        return None
    param = inspect.signature(registry.get(section["name"])).parameters.get(parts[2])
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def _same(have, want):
    if isinstance(want, float) and not isinstance(have, bool) and isinstance(have, (int, float)):
        return abs(float(have) - want) <= 1e-12 * max(1.0, abs(want))
    return have == want


def compare_settings(cfg, settings, fmt):
    """Check a user config against the checkpoint's settings.

    A key the config leaves out counts with the model's default. Returns ``(conflicts, resized)``: lists
    of ``"key: config X vs checkpoint Y"`` (for the settings no fb tensor shows: ``vs the original
    release's Y``). Conflicts would load wrongly, not at all, or compute other outputs; resized
    settings are handled by the embedding resize.
    """
    conflicts, resized = [], []
    for key, want in settings.items():
        have = _config_value(cfg, key)
        if _same(have, want):
            continue
        origin = "the original release's" if key in IMPLIED_BY_RELEASE[fmt] else "checkpoint"
        item = f"{key}: config {have} vs {origin} {want}"
        (resized if key in RESIZABLE_SETTINGS else conflicts).append(item)
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


# ---------------------------------------------------------------- parity with the source model

# Both models run in float64, where the two implementations agree to ~1e-12; a setting that differs
# (a LayerNorm eps of 1e-5 instead of 1e-6 moves ViT-B logits by ~1e-4, a head count by ~1) is far above this.
LOGITS_RTOL = 1e-7


class SourceModelUnavailable(Exception):
    """The source model cannot be run here (no torch / transformers, an unsupported variant)."""


def source_model(src, fmt, settings, state):
    """The checkpoint's own model in PyTorch: ``transformers``' TimeSformer, float64, eval mode.

    ``hf``: the folder as ``from_pretrained`` reads it (its ``config.json``, not our reading of it);
    ``fb``: the original release's architecture with ``settings`` (shapes, plus the release's head width and
    LayerNorm eps or the source settings given), loaded with the checkpoint's tensors.

    Raises:
        SourceModelUnavailable: torch or transformers is not installed, or the variant has no
            output-equivalent there (``space_only``: transformers classifies every frame separately).
    """
    if settings.get("MODEL.backbone.attention_type", "divided_space_time") == "space_only":
        raise SourceModelUnavailable("transformers' space_only model classifies each frame, unlike the original")
    if "MODEL.head.num_classes" not in settings:
        raise SourceModelUnavailable("the checkpoint has no classifier")
    try:
        import torch
        import transformers
        from transformers import TimesformerConfig, TimesformerForVideoClassification
    except ImportError as err:
        raise SourceModelUnavailable(f"{err.name or 'torch / transformers'} is not installed "
                                     "(pip install torch transformers to compare logits)") from None
    transformers.logging.set_verbosity_error()
    if fmt == "hf":
        # the explicit class: config.json's auto_map (code in the folder) is never imported
        model = TimesformerForVideoClassification.from_pretrained(src, local_files_only=True)
    else:
        dim = settings["MODEL.backbone.embed_dim"]
        config = TimesformerConfig(
            image_size=settings["MODEL.backbone.img_size"], patch_size=settings["MODEL.backbone.patch_size"],
            num_channels=settings["MODEL.backbone.in_channels"], num_frames=settings["MODEL.backbone.num_seg"],
            hidden_size=dim, num_hidden_layers=settings["MODEL.backbone.depth"],
            num_attention_heads=settings["MODEL.backbone.num_heads"],
            intermediate_size=int(round(settings["MODEL.backbone.mlp_ratio"] * dim)), hidden_act="gelu",
            layer_norm_eps=settings["MODEL.backbone.epsilon"], qkv_bias=settings["MODEL.backbone.qkv_bias"],
            attention_type=settings["MODEL.backbone.attention_type"], num_labels=settings["MODEL.head.num_classes"])
        model = TimesformerForVideoClassification(config)
        hf_state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in from_paddle(state, "hf").items()}
        missing, unexpected = model.load_state_dict(hf_state, strict=False)
        if missing or unexpected:
            raise ConversionError(f"the checkpoint does not fill transformers' TimeSformer (missing: "
                                  f"{', '.join(missing) or '-'}; unexpected: {', '.join(unexpected) or '-'})")
    return model.double().eval()


def compare_logits(state, settings, model_cfg, fmt, src, seed=0):
    """Logits of the source model (:func:`source_model`) and of our model built from ``model_cfg`` and
    loaded with ``state``, on one random clip at the checkpoint's own frame count and image size, in float64.

    ``model_cfg``'s ``num_seg`` / ``img_size`` are replaced by the checkpoint's (a config that resizes the
    embeddings is checked at the source's size; the resize itself is exact interpolation, tested apart).

    Returns:
        ``{"max_abs_diff", "max_abs_logit", "tolerance", "matches"}``.
    Raises:
        SourceModelUnavailable: see :func:`source_model`.
    """
    import copy

    import paddle

    from . import build_model, load_checkpoint

    reference = source_model(src, fmt, settings, state)
    frames, size = settings["MODEL.backbone.num_seg"], settings["MODEL.backbone.img_size"]
    clip = np.random.RandomState(seed).standard_normal((1, settings["MODEL.backbone.in_channels"], frames, size,
                                                        size))
    import torch

    with torch.no_grad():
        expected = reference(pixel_values=torch.from_numpy(clip.transpose(0, 2, 1, 3, 4).copy())).logits.numpy()

    model_cfg = copy.deepcopy(model_cfg)
    model_cfg["backbone"].update(pretrained="", num_seg=frames, img_size=size)
    model_cfg["runtime_cfg"] = {"test": {"num_seg": frames, "avg_type": "score"}}
    model = build_model(model_cfg)
    load_checkpoint(model, {k: paddle.to_tensor(v) for k, v in state.items()})
    model.eval()
    model.to(dtype="float64")
    with paddle.no_grad():
        got = model(paddle.to_tensor(clip), mode="infer").numpy()
    scale = float(np.abs(expected).max())
    diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    tolerance = LOGITS_RTOL * max(1.0, scale)
    return {"max_abs_diff": diff, "max_abs_logit": scale, "tolerance": tolerance, "matches": diff <= tolerance}
