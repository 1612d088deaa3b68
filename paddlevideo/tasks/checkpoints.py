"""Epoch / best checkpoint files of a training run, all written atomically.

Layout under the output dir (``output/<model_name>`` by default):
``<model_name>_epoch_000NN.pdparams`` (model state dict, PaddleVideo format),
``<model_name>_epoch_000NN.pdopt`` (``{"optimizer": optimizer state incl. the LR schedule, keyed by
structural parameter names, "portable": True,
'epoch', 'global_step', 'best_top1', 'scaler'}``) and ``<model_name>_best.pdparams``.
The ``.pdparams`` is written first, so a ``.pdopt`` on disk means the pair is complete.
"""

import glob
import os
import re

from ..utils.save_load import load, save


def output_dir_of(cfg):
    """``cfg.output_dir`` if set, else ``output/<model_name>``."""
    return cfg.get("output_dir") or os.path.join("output", cfg.get("model_name", "model"))


def epoch_prefix(output_dir, model_name, epoch):
    """Path without suffix of the files for (1-based) ``epoch``."""
    return os.path.join(output_dir, f"{model_name}_epoch_{epoch:05d}")


def best_path(output_dir, model_name):
    return os.path.join(output_dir, f"{model_name}_best.pdparams")


def save_epoch(output_dir, model_name, epoch, model_state, opt_state):
    """Write the ``.pdparams`` then the ``.pdopt`` of a finished (1-based) epoch."""
    prefix = epoch_prefix(output_dir, model_name, epoch)
    save(model_state, prefix + ".pdparams")
    save(opt_state, prefix + ".pdopt")
    return prefix


def latest_epoch(output_dir, model_name):
    """The highest epoch with both files present, or ``None``."""
    pattern = re.compile(re.escape(model_name) + r"_epoch_(\d+)\.pdopt$")
    epochs = []
    for path in glob.glob(os.path.join(glob.escape(output_dir), f"{glob.escape(model_name)}_epoch_*.pdopt")):
        match = pattern.search(os.path.basename(path))
        if match and os.path.isfile(path[: -len(".pdopt")] + ".pdparams"):
            epochs.append(int(match.group(1)))
    return max(epochs) if epochs else None


def load_epoch(output_dir, model_name, epoch):
    """``(model_state, opt_state)`` of ``epoch``; a PaddleVideo ``.pdopt`` (a bare optimizer state) is
    wrapped as ``{'optimizer': ..., 'epoch': epoch}``."""
    prefix = epoch_prefix(output_dir, model_name, epoch)
    for suffix in (".pdparams", ".pdopt"):
        if not os.path.isfile(prefix + suffix):
            raise FileNotFoundError(f"resume: '{prefix + suffix}' not found; check resume_epoch / output_dir")
    model_state = load(prefix + ".pdparams")
    opt_state = load(prefix + ".pdopt")
    if "optimizer" not in opt_state:
        opt_state = {"optimizer": opt_state, "epoch": epoch}
    return model_state, opt_state


def _rename_keys(state, mapping):
    """Rename optimizer-state keys ``<old>_<accumulator>`` (and ``master_weights[old]``) by ``mapping``."""
    olds = sorted(mapping, key=len, reverse=True)  # longest first: 'linear_10.w_0' before 'linear_1.w_0'
    out = {}
    for key, value in state.items():
        if key == "master_weights" and isinstance(value, dict):
            out[key] = {mapping.get(k, k): v for k, v in value.items()}
            continue
        for old in olds:
            if key.startswith(old + "_"):
                key = mapping[old] + key[len(old):]
                break
        out[key] = value
    return out


def portable_optimizer_state(optimizer, model):
    """``optimizer.state_dict()`` keyed by structural parameter names (``backbone.blocks.0.attn.qkv.weight``)
    instead of paddle's per-process names (``linear_12.w_0``), so it loads into any process's model."""
    return _rename_keys(optimizer.state_dict(), {p.name: n for n, p in model.named_parameters()})


def load_portable_optimizer_state(optimizer, model, state, portable=True):
    """Inverse of :func:`portable_optimizer_state`; ``portable=False`` loads a PaddleVideo ``.pdopt`` as is."""
    if portable:
        state = _rename_keys(state, {n: p.name for n, p in model.named_parameters()})
    optimizer.set_state_dict(state)
