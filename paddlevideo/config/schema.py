"""The config schema: every key the engine reads, what it may hold, and the PaddleVideo keys we ignore.

Two kinds of keys:

- **Engine keys** (top level, ``DATASET`` loader settings, ``GRADIENT_ACCUMULATION``, ``INFERENCE``,
  ``MODEL.runtime_cfg``, the ``OPTIMIZER`` keys the solver pops) are declared here with their rule
  and, where the engine has one, their default. This table is where those defaults live.
- **Constructor keys** (a class a config names: backbone, head, loss, framework, dataset, pipeline
  operators, metric, learning-rate schedule) are read from the class's signature with ``inspect``, so
  a new constructor argument is a known key at once and its default stays in the constructor alone.
  This module only adds rules (types, ranges, choices) for them, in :data:`KEY_RULES`.

A *component* is a mapping that names its class (``name: VisionTransformer``, ``framework: ...``,
``format: VideoDataset``, or a transform item ``- RandomCrop: {...}``); its allowed keys are the
class's constructor arguments minus the ones the engine passes itself (e.g. a dataset's ``pipeline``).

Importing this module is cheap; the registries (and paddle) are imported the first time a component
is looked up.
"""

import functools
import inspect

from . import rules as r

MISSING = inspect.Parameter.empty
PIPELINE_MODES = ("train", "valid", "test")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Field:
    """One engine key: its rule (or nested spec), its default (``MISSING`` if none) and a line of doc."""

    def __init__(self, spec, default=MISSING, doc=""):
        self.spec = spec
        self.default = default
        self.doc = doc


class Section:
    """A mapping with a fixed set of keys (:class:`Field` each), plus PaddleVideo keys it ignores."""

    def __init__(self, fields, ignored=None, doc=""):
        self.fields = fields
        self.ignored = ignored or {}
        self.doc = doc


class Component:
    """A mapping naming a class of registry ``kind`` in ``name_key``; its other keys are that class's
    constructor arguments, except ``engine_args`` (passed by the engine, never by the config)."""

    def __init__(self, kind, name_key="name", engine_args=()):
        self.kind = kind
        self.name_key = name_key
        self.engine_args = tuple(engine_args)


class Transforms:
    """``PIPELINE.<mode>.transform``: a list of one-key mappings ``{Operator: {key: value} or null}``."""

    kind = "operator"


class Either:
    """A plain value checked by ``rule``, or a mapping checked by ``mapping`` (e.g. a number or a schedule)."""

    def __init__(self, rule, mapping):
        self.rule = rule
        self.mapping = mapping


class Ignored:
    """A key PaddleVideo's configs carry that this project does not use: dropped with a warning.

    ``only_if`` limits that to harmless values; any other value is an error explaining ``otherwise``.
    """

    def __init__(self, reason, only_if=None, otherwise=""):
        self.reason = reason
        self.only_if = only_if
        self.otherwise = otherwise


# --- rules for constructor keys (the keys themselves come from the signatures) -------------------

_FRACTION = r.number(ge=0, lt=1)
_POSITIVE_INT = r.integer(ge=1)


# Choices are the values the constructors accept (tests/test_config.py builds each one, and checks that
# a value outside them is refused by the constructor too); stated here so that the schema does not
# depend on which module of the model keeps its constants.
ATTENTION_TYPES = ("divided_space_time", "space_only", "joint_space_time")
AVG_TYPES = ("score", "prob")
CHOICES = {
    ("backbone", "attention_type"): ATTENTION_TYPES,
    ("backbone", "attention_impl"): ("fused", "plain"),
    ("backbone", "kernels"): ("auto", "paddle"),
    ("operator", "backend"): ("decord", "pyav", "cv2"),
    ("operator", "mode"): ("train", "valid", "test", "infer"),
    ("operator", "data_format"): ("cthw", "tchw"),
}


@functools.lru_cache(maxsize=None)
def key_rules():
    """``{kind: {key: rule or nested spec}}`` for constructor keys."""
    def one_of(kind, key):
        return r.choice(*CHOICES[(kind, key)])

    runtime_cfg = Section({
        "test": Field(Section({
            "num_seg": Field(_POSITIVE_INT, doc="frames per test view; default MODEL.backbone.num_seg"),
            "avg_type": Field(r.choice(*AVG_TYPES), doc="average logits ('score') or softmax ('prob') over views"),
        })),
    }, doc="test-time settings of the recognizer")
    return {
        "framework": {
            "backbone": Component("backbone", engine_args=ENGINE_ARGS["backbone"]),
            "head": Component("head"),
            "runtime_cfg": runtime_cfg,
        },
        "backbone": {
            "pretrained": r.optional(r.string()),
            "img_size": _POSITIVE_INT, "patch_size": _POSITIVE_INT, "in_channels": _POSITIVE_INT,
            "embed_dim": _POSITIVE_INT, "depth": _POSITIVE_INT, "num_heads": _POSITIVE_INT,
            "mlp_ratio": r.number(gt=0), "qkv_bias": r.boolean(), "qk_scale": r.optional(r.number(gt=0)),
            "drop_rate": _FRACTION, "attn_drop_rate": _FRACTION, "drop_path_rate": _FRACTION,
            "epsilon": r.number(gt=0), "num_seg": _POSITIVE_INT,
            "attention_type": one_of("backbone", "attention_type"), "attention_impl": one_of("backbone", "attention_impl"),
            "time_embed_std": r.number(ge=0), "zero_init_temporal_fc": r.boolean(), "init_std": r.number(gt=0),
            "recompute": r.boolean(),
            # switches of issue 13 (branch `model`); known once they are constructor arguments
            "kernels": one_of("backbone", "kernels"), "cls_only_last_block": r.boolean(),
            # VisionTransformer_tweaks (PP-TimeSformer): accepted as PaddleVideo passes them, not applied
            "wd_bias": r.boolean(), "lr_mult_list": r.list_of(r.number(gt=0)),
        },
        "head": {
            "num_classes": _POSITIVE_INT, "in_channels": _POSITIVE_INT, "std": r.number(gt=0), "ls_eps": _FRACTION,
            "loss_cfg": Component("loss"),
        },
        "loss": {"loss_weight": r.number(gt=0)},
        "dataset": {
            "file_path": r.string(nonempty=True), "data_prefix": r.optional(r.string()),
            "num_retries": r.integer(ge=0), "suffix": r.optional(r.string()),
        },
        "operator": {
            "backend": one_of("operator", "backend"), "mode": one_of("operator", "mode"),
            "num_seg": _POSITIVE_INT, "sampling_rate": r.number(gt=0), "target_fps": r.number(gt=0),
            "num_clips": _POSITIVE_INT, "seg_len": _POSITIVE_INT, "valid_mode": r.boolean(),
            "linspace_sample": r.boolean(),
            "mean": r.list_of(r.number()), "std": r.list_of(r.number(gt=0)), "tensor_shape": r.list_of(_POSITIVE_INT),
            "data_format": one_of("operator", "data_format"),
            "min_size": _POSITIVE_INT, "max_size": _POSITIVE_INT, "target_size": _POSITIVE_INT,
            "p": r.number(ge=0, le=1), "do_round": r.boolean(),
        },
        "metric": {},
        # the MIX section (PP-TimeSformer's VideoMix, loader/mix.py)
        "mix": {"cutmix_prob": r.number(ge=0, le=1), "mixup_alpha": r.number(gt=0), "cutmix_alpha": r.number(gt=0)},
        "lr": {
            "learning_rate": r.number(gt=0), "milestones": r.list_of(r.integer(ge=0), increasing=True),
            "gamma": r.number(gt=0), "warmup_steps": r.integer(ge=0), "warmup_epochs": r.number(ge=0),
            "total_steps": _POSITIVE_INT, "warmup_start_lr": r.number(ge=0), "min_lr": r.number(ge=0),
            # CustomWarmupCosineDecay (PP-TimeSformer); warmup_epochs and warmup_start_lr as above
            "cosine_base_lr": r.number(gt=0), "max_epoch": r.number(gt=0),
        },
    }


# Constructor arguments a config does not give: the engine passes them, or the builder fills them in.
ENGINE_ARGS = {
    "dataset": ("pipeline", "mode", "num_classes", "expected_shape"),
    "metric": ("data_size", "batch_size", "log_interval"),
    "lr": ("last_epoch", "verbose", "num_iters"),  # num_iters: CustomWarmupCosineDecay's, from the train loader
    "backbone": ("trust_pickle",),  # build_model(cfg, trust_pickle=True) only: a config may come from elsewhere
}
FILLED_BY_BUILDER = {"lr": ("warmup_steps", "total_steps")}  # solver.lr.build_lr: 0 and epochs x updates
EXTRA_KEYS = {("lr", "WarmupCosine"): {"warmup_epochs": r.number(ge=0)},  # converted to warmup_steps
              ("lr", "CustomWarmupCosineDecay"): {"iter_step": r.boolean()}}  # step every iteration (else per epoch)

# PaddleVideo keys found in its TimeSformer configs (releases 2021-2022) that this project does not read.
IGNORED = {
    "operator": {
        "in_tensor": Ignored("an early PaddleVideo Normalization switch; frames are normalised as decoded"),
    },
}
# Old PaddleVideo names of keys, accepted with a warning and moved to the current name.
RENAMED = {"backbone": {"seg_num": "num_seg"}}


def _optimizer_keys():
    weight_decay_l2 = Section({"name": Field(r.choice("L2")), "value": Field(r.number(ge=0))})
    return {
        "Momentum": {
            "momentum": r.number(ge=0), "use_nesterov": r.boolean(),
            "weight_decay": Either(r.number(ge=0), weight_decay_l2),
        },
        "AdamW": {
            "beta1": _FRACTION, "beta2": _FRACTION, "epsilon": r.number(gt=0), "weight_decay": r.number(ge=0),
            "no_weight_decay_name": r.string(),
        },
    }


def _optimizer_common():
    grad_clip = Section({
        "name": Field(r.choice("ClipGradByGlobalNorm", "ClipGradByNorm", "ClipGradByValue")),
        "value": Field(r.number(gt=0)),
    })
    return {
        "learning_rate": Either(r.number(gt=0), Component("lr")),
        "grad_clip": Either(r.number(gt=0), grad_clip),
    }


# --- engine keys -----------------------------------------------------------------------------------

def top_level():
    """The schema of a whole config (a :class:`Section`)."""
    return _top_level()


@functools.lru_cache(maxsize=None)
def _top_level():
    dataset = Section({
        "batch_size": Field(_POSITIVE_INT, doc="training clips per process and step (and the default of the two below)"),
        "num_workers": Field(r.integer(ge=0), 0, "loader worker processes per process; 0 loads in the main process"),
        "test_batch_size": Field(_POSITIVE_INT, doc="test clips per batch; default DATASET.batch_size"),
        "valid_batch_size": Field(_POSITIVE_INT, doc="validation clips per batch; default DATASET.batch_size"),
        "label_file": Field(r.string(), doc="class names for tools/predict.py (after INFERENCE.label_file)"),
        **{mode: Field(Component("dataset", name_key="format", engine_args=ENGINE_ARGS["dataset"]),
                       doc=f"the {mode} list and how to read it") for mode in PIPELINE_MODES},
    })
    pipeline = Section({
        mode: Field(Section({
            "decode": Field(Component("operator"), doc="opens the video, chooses the temporal window"),
            "sample": Field(Component("operator"), doc="picks and decodes the frames"),
            "transform": Field(Transforms(), doc="per-clip transforms, in order"),
        }), doc=f"how a {mode} clip is made") for mode in PIPELINE_MODES
    })
    inference = Section({
        "name": Field(r.choice("TimeSformer_Inference_helper"), doc="PaddleVideo's helper; predict uses PIPELINE.test"),
        "num_seg": Field(_POSITIVE_INT, doc="frames per view of the exported model; default MODEL.runtime_cfg.test.num_seg"),
        "target_size": Field(_POSITIVE_INT, doc="frame size of the exported model; default MODEL.backbone.img_size"),
        "label_file": Field(r.string(), doc="class names for tools/predict.py"),
    }, ignored={key: Ignored(f"a TimeSformer_Inference_helper argument; tools/predict.py {what}")
                for key, what in (("seg_len", "samples with PIPELINE.test"), ("short_size", "scales with PIPELINE.test"),
                                  ("mean", "normalises with PIPELINE.test"), ("std", "normalises with PIPELINE.test"),
                                  ("top_k", "takes --top_k"))})
    accumulation = Section(
        {"global_batch_size": Field(_POSITIVE_INT, doc="batch_size x processes x accumulation steps")},
        ignored={"num_gpus": Ignored("the number of processes comes from paddle.distributed.launch")})
    return Section({
        "MODEL": Field(Component("framework", name_key="framework"), doc="the model: framework, backbone, head"),
        "DATASET": Field(dataset, doc="lists and loader settings"),
        "PIPELINE": Field(pipeline, doc="clip making per mode"),
        "OPTIMIZER": Field(Component("optimizer"), doc="optimizer, learning rate, weight decay, clipping"),
        "GRADIENT_ACCUMULATION": Field(accumulation, doc="accumulate gradients up to a global batch"),
        "METRIC": Field(Component("metric", engine_args=ENGINE_ARGS["metric"]), doc="the test metric"),
        "MIX": Field(Component("mix"), doc="mixup / cutmix of each training batch (VideoMix); none without it"),
        "INFERENCE": Field(inference, doc="the exported model's input"),
        "model_name": Field(r.string(nonempty=True), "model", "names the output folder and checkpoint files"),
        "epochs": Field(_POSITIVE_INT, 1, "training epochs"),
        "log_interval": Field(_POSITIVE_INT, 10, "batches between log lines"),
        "save_interval": Field(_POSITIVE_INT, 1, "checkpoint after epochs 1, 1 + save_interval, ... and the last (PaddleVideo's rule)"),
        "log_level": Field(r.choice(*LOG_LEVELS), "INFO", "console and log-file level"),
        "output_dir": Field(r.optional(r.string(nonempty=True)), None, "checkpoints and logs; default output/<model_name>"),
        "resume_epoch": Field(r.integer(ge=0), 0, "resume from this epoch's checkpoint (0: --resume takes the latest)"),
        "use_visualdl": Field(r.boolean(), False, "write VisualDL logs to <output_dir>/vdl (as main.py --use_vdl)"),
        "label_file": Field(r.string(), doc="class names for tools/predict.py (after INFERENCE.label_file)"),
    })


def default(path):
    """The schema default of an engine key (``"epochs"``, ``"DATASET.num_workers"``), or ``MISSING``."""
    spec = top_level()
    parts = path.split(".")
    for part in parts[:-1]:
        spec = spec.fields[part].spec
    return spec.fields[parts[-1]].default


# --- components ------------------------------------------------------------------------------------

class Key:
    """One key of a component: its rule or nested spec, and whether the config must give it."""

    def __init__(self, spec, default=MISSING, required=False):
        self.spec = spec
        self.default = default
        self.required = required


@functools.lru_cache(maxsize=None)
def registry(kind):
    """``{name: class}`` of the classes a config can name for ``kind`` (importing them registers them)."""
    if kind in ("framework", "backbone", "head", "loss"):
        from .. import modeling

        return _names(getattr(modeling, {"framework": "RECOGNIZERS", "backbone": "BACKBONES", "head": "HEADS",
                                         "loss": "LOSSES"}[kind]))
    if kind in ("operator", "dataset"):
        from ..loader import dataset, pipelines  # noqa: F401  (registration)
        from ..loader.registry import DATASETS, PIPELINES

        return _names(PIPELINES if kind == "operator" else DATASETS)
    if kind == "metric":
        from ..metrics import METRIC

        return _names(METRIC)
    if kind == "mix":
        from ..loader import mix  # noqa: F401  (registration)
        from ..loader.registry import BATCH_MIXES

        return _names(BATCH_MIXES)
    if kind == "lr":
        from ..solver import lr

        return {"MultiStepDecay": lr.MultiStepDecay, "WarmupCosine": lr.WarmupCosine,
                "CustomWarmupCosineDecay": lr.CustomWarmupCosineDecay}
    if kind == "optimizer":
        return {name: None for name in _optimizer_keys()}
    raise KeyError(kind)


def _names(reg):
    return {name: reg.get(name) for name in reg.names()}


KIND_NAMES = {"framework": "framework", "backbone": "backbone", "head": "head", "loss": "loss",
              "operator": "pipeline operator", "dataset": "dataset format", "metric": "metric",
              "lr": "learning-rate schedule", "optimizer": "optimizer", "mix": "batch mixer"}


@functools.lru_cache(maxsize=None)
def component_keys(kind, name):
    """``{key: Key}`` of component ``name`` of ``kind`` (its name key excluded)."""
    if kind == "optimizer":
        specific = _optimizer_keys()[name]
        keys = {k: Key(spec) for k, spec in {**_optimizer_common(), **specific}.items()}
        keys["learning_rate"].required = True
        return keys
    cls = registry(kind)[name]
    rules = key_rules()[kind]
    skip = ENGINE_ARGS.get(kind, ()) + ("self",)
    keys = {}
    for param in constructor_parameters(cls):
        if param.name in skip:
            continue
        spec = rules.get(param.name) or r.from_default(param.default)
        required = param.default is MISSING and param.name not in FILLED_BY_BUILDER.get(kind, ())
        keys[param.name] = Key(spec, param.default, required)
    for key, spec in EXTRA_KEYS.get((kind, name), {}).items():
        keys[key] = Key(spec)
    return keys


def constructor_parameters(cls):
    """The keyword parameters of ``cls(...)``. A subclass whose constructor takes ``**kwargs`` passes them on to
    its base class (``VisionTransformer_tweaks`` -> ``VisionTransformer``), so the base's parameters count too,
    with their defaults where the base states them (the subclass's own parameters first)."""
    params, seen = [], set()
    for klass in cls.__mro__:
        if klass is object:
            break
        signature = inspect.signature(klass)
        for param in signature.parameters.values():
            if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD) and param.name not in seen:
                seen.add(param.name)
                params.append(param)
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            break
    return params


def unruled_keys():
    """``[(kind, name, key)]`` of constructor keys that have no rule here (their type is guessed from the
    default); a test keeps this empty so a new constructor argument gets a rule."""
    missing = []
    for kind in ("framework", "backbone", "head", "loss", "operator", "dataset", "metric", "lr", "mix"):
        rules = key_rules()[kind]
        for name in registry(kind):
            missing += [(kind, name, key) for key in component_keys(kind, name)
                        if key not in rules and key not in dict(EXTRA_KEYS.get((kind, name), {}))]
    return missing
