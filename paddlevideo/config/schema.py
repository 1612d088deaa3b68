"""The config schema (docs/config.md, "The schema"): every key the engine reads, what it may hold, and the
PaddleVideo keys we ignore. Engine keys are declared here with their rule and default (:func:`top_level`); a
*component* (a mapping that names a class: ``name: VisionTransformer``, ``- RandomCrop: {...}``) has the class's
constructor arguments as keys, each with the rule its annotation states and the default its signature gives
(:func:`component_keys`). The registries (and paddle) are imported when first looked up."""

import functools
import inspect

from ..common import rules as r
from ..common.errors import ConfigError
from .attrdict import lookup

MISSING = inspect.Parameter.empty
PIPELINE_MODES = ("train", "valid", "test")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
KIND_NAMES = {"framework": "framework", "backbone": "backbone", "head": "head", "loss": "loss",
              "operator": "pipeline operator", "dataset": "dataset format", "metric": "metric",
              "lr": "learning-rate schedule", "optimizer": "optimizer", "mix": "batch mixer"}


class Field:
    """One key: its rule (or nested spec), its default (``MISSING`` if none) and a line of doc; a component's key also
    says whether the config must give it and whether its rule is only guessed from the default (no annotation)."""

    def __init__(self, spec, default=MISSING, doc="", required=False, guessed=False):
        self.spec, self.default, self.doc, self.required, self.guessed = spec, default, doc, required, guessed


class Section:
    """A mapping with a fixed set of keys (:class:`Field` each), plus PaddleVideo keys it ignores (``{key: why}``:
    dropped with a warning). Each spec has a ``text`` for ``--keys``, as a rule has."""

    text = "a mapping"

    def __init__(self, fields, ignored=None):
        self.fields, self.ignored = fields, ignored or {}


class Component:
    """A mapping naming a class of registry ``kind`` in ``name_key``; its other keys are that class's
    constructor arguments, except its kind's :data:`ENGINE_ARGS` (passed by the engine, never by the config)."""

    def __init__(self, kind, name_key="name"):
        self.kind, self.name_key, self.engine_args = kind, name_key, ENGINE_ARGS.get(kind, ())
        self.text = f"{'an' if KIND_NAMES[kind][0] in 'aeiou' else 'a'} {KIND_NAMES[kind]}, named by `{name_key}`"


class Transforms:
    """``PIPELINE.<mode>.transform``: a list of one-key mappings ``{Operator: {key: value} or null}``."""

    kind = "operator"
    text = "a list of one-key mappings {pipeline operator: keys}"


class Either:
    """A plain value checked by ``rule``, or a mapping checked by ``mapping`` (e.g. a number or a schedule)."""

    def __init__(self, rule, mapping):
        self.rule, self.mapping = rule, mapping
        self.text = f"{rule.text}, or {mapping.text}"


# Constructor arguments a config does not give: the engine passes them, or the builder fills them in.
ENGINE_ARGS = {
    "dataset": ("pipeline", "mode", "num_classes", "expected_shape"),
    "metric": ("data_size", "batch_size", "log_interval"),
    "lr": ("last_epoch", "verbose", "num_iters"),  # num_iters: CustomWarmupCosineDecay's, from the train loader
    "backbone": ("trust_pickle",),  # build_model(cfg, trust_pickle=True) only: a config may come from elsewhere
}
FILLED_BY_BUILDER = {"lr": ("warmup_steps", "total_steps")}  # solver.lr.build_lr: 0 and epochs x updates
EXTRA_KEYS = {("lr", "WarmupCosine"): {"warmup_epochs": r.NonNegative},  # converted to warmup_steps
              ("lr", "CustomWarmupCosineDecay"): {"iter_step": r.boolean()}}  # step every iteration (else per epoch)
# PaddleVideo keys found in its TimeSformer configs (releases 2021-2022) that this project does not read.
IGNORED = {"operator": {"in_tensor": "an early PaddleVideo Normalization switch; frames are normalised as decoded"}}
# Old PaddleVideo names of keys, accepted with a warning and moved to the current name.
RENAMED = {"backbone": {"seg_num": "num_seg"}}


@functools.lru_cache(maxsize=None)
def key_rules():
    """``{kind: {key: spec}}`` of the constructor arguments that hold a nested section (not a value with a rule)."""
    from ..modeling.framework.recognizer_transformer import AVG_TYPES

    runtime_cfg = Section({"test": Field(Section({
        "num_seg": Field(r.PositiveInt, doc="frames per test view; default MODEL.backbone.num_seg"),
        "avg_type": Field(r.OneOf(*AVG_TYPES), doc="average logits ('score') or softmax ('prob') over views"),
    }))})
    return {
        "framework": {"backbone": Component("backbone"),
                      "head": Component("head"), "runtime_cfg": runtime_cfg},
        "head": {"loss_cfg": Component("loss")},
    }


def _optimizer_keys():
    weight_decay_l2 = Section({"name": Field(r.OneOf("L2")), "value": Field(r.NonNegative)})
    grad_clip = Section({"name": Field(r.OneOf("ClipGradByGlobalNorm", "ClipGradByNorm", "ClipGradByValue")),
                         "value": Field(r.Positive)})
    common = {"learning_rate": Either(r.Positive, Component("lr")), "grad_clip": Either(r.Positive, grad_clip)}
    return {
        "Momentum": {**common, "momentum": r.NonNegative, "use_nesterov": r.boolean(),
                     "weight_decay": Either(r.NonNegative, weight_decay_l2)},
        "AdamW": {**common, "beta1": r.Fraction, "beta2": r.Fraction, "epsilon": r.Positive,
                  "weight_decay": r.NonNegative, "no_weight_decay_name": r.string()},
    }


# --- engine keys -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def top_level():
    """The schema of a whole config (a :class:`Section`)."""
    dataset = Section({
        "batch_size": Field(r.PositiveInt, doc="training clips per process and step (and the default of the two below)"),
        "num_workers": Field(r.NonNegativeInt, 0, "loader worker processes per process; 0 loads in the main process"),
        "test_batch_size": Field(r.PositiveInt, doc="test clips per batch; default DATASET.batch_size"),
        "valid_batch_size": Field(r.PositiveInt, doc="validation clips per batch; default DATASET.batch_size"),
        "label_file": Field(r.string(), doc="class names for tools/predict.py (after INFERENCE.label_file)"),
        **{mode: Field(Component("dataset", name_key="format"),
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
        "name": Field(r.OneOf("TimeSformer_Inference_helper"), doc="PaddleVideo's helper; predict uses PIPELINE.test"),
        "num_seg": Field(r.PositiveInt, doc="frames per view of the exported model; default MODEL.runtime_cfg.test.num_seg"),
        "target_size": Field(r.PositiveInt, doc="frame size of the exported model; default MODEL.backbone.img_size"),
        "label_file": Field(r.string(), doc="class names for tools/predict.py"),
    }, ignored={key: f"a TimeSformer_Inference_helper argument; tools/predict.py {what}"
                for key, what in (("seg_len", "samples with PIPELINE.test"), ("short_size", "scales with PIPELINE.test"),
                                  ("mean", "normalises with PIPELINE.test"), ("std", "normalises with PIPELINE.test"),
                                  ("top_k", "takes --top_k"))})
    accumulation = Section(
        {"global_batch_size": Field(r.PositiveInt, doc="batch_size x processes x accumulation steps")},
        ignored={"num_gpus": "the number of processes comes from paddle.distributed.launch"})
    return Section({
        "MODEL": Field(Component("framework", name_key="framework"), doc="the model: framework, backbone, head"),
        "DATASET": Field(dataset, doc="lists and loader settings"),
        "PIPELINE": Field(pipeline, doc="clip making per mode"),
        "OPTIMIZER": Field(Component("optimizer"), doc="optimizer, learning rate, weight decay, clipping"),
        "GRADIENT_ACCUMULATION": Field(accumulation, doc="accumulate gradients up to a global batch"),
        "METRIC": Field(Component("metric"), doc="the test metric"),
        "MIX": Field(Component("mix"), doc="mixup / cutmix of each training batch (VideoMix); none without it"),
        "INFERENCE": Field(inference, doc="the exported model's input"),
        "model_name": Field(r.NonEmptyStr, "model", "names the output folder and checkpoint files"),
        "epochs": Field(r.PositiveInt, 1, "training epochs"),
        "log_interval": Field(r.PositiveInt, 10, "batches between log lines"),
        "save_interval": Field(r.PositiveInt, 1, "checkpoint after epochs 1, 1 + save_interval, ... and the last (PaddleVideo's rule)"),
        "log_level": Field(r.OneOf(*LOG_LEVELS), "INFO", "console and log-file level"),
        "output_dir": Field(r.optional(r.NonEmptyStr), None, "checkpoints and logs; default output/<model_name>"),
        "resume_epoch": Field(r.NonNegativeInt, 0, "resume from this epoch's checkpoint (0: --resume takes the latest)"),
        "use_visualdl": Field(r.boolean(), False, "write VisualDL logs to <output_dir>/vdl (as main.py --use_vdl)"),
        "label_file": Field(r.string(), doc="class names for tools/predict.py (after INFERENCE.label_file)"),
    })


# --- components ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def registry(kind):
    """``{name: class}`` of the classes a config can name for ``kind`` (importing them registers them)."""
    if kind == "optimizer":  # built by solver.optimizer from the keys above, not a class
        return dict.fromkeys(_optimizer_keys())
    if kind == "lr":
        from ..solver import lr

        return {name: getattr(lr, name) for name in ("MultiStepDecay", "WarmupCosine", "CustomWarmupCosineDecay")}
    # every registry at once: the first lookup imports paddle (with modeling) anyway, the others add little
    from .. import metrics, modeling
    from ..loader import dataset, mix, pipelines, registry as loader  # noqa: F401  (registration)

    reg = {"framework": modeling.RECOGNIZERS, "backbone": modeling.BACKBONES, "head": modeling.HEADS,
           "loss": modeling.LOSSES, "operator": loader.PIPELINES, "dataset": loader.DATASETS,
           "mix": loader.BATCH_MIXES, "metric": metrics.METRIC}[kind]
    return {name: reg.get(name) for name in reg.names()}


@functools.lru_cache(maxsize=None)
def component_keys(kind, name):
    """``{key: Field}`` of component ``name`` of ``kind`` (its name key excluded)."""
    if kind == "optimizer":
        keys = {k: Field(spec) for k, spec in _optimizer_keys()[name].items()}
        keys["learning_rate"].required = True
        return keys
    nested, keys = key_rules().get(kind, {}), {}
    for param in constructor_parameters(registry(kind)[name]):
        if param.name in ENGINE_ARGS.get(kind, ()):
            continue
        spec = nested.get(param.name) or r.rule_of(param.annotation)
        required = param.default is MISSING and param.name not in FILLED_BY_BUILDER.get(kind, ())
        keys[param.name] = Field(spec or r.from_default(param.default), param.default, required=required,
                                 guessed=spec is None)
    for key, spec in EXTRA_KEYS.get((kind, name), {}).items():
        keys[key] = Field(spec)
    return keys


def constructor_parameters(cls):
    """The keyword parameters of ``cls(...)``. A subclass whose constructor takes ``**kwargs`` passes them on to
    its base class (``VisionTransformer_tweaks`` -> ``VisionTransformer``), so the base's parameters count too,
    with their defaults where the base states them (the subclass's own parameters first)."""
    params = {}
    for klass in cls.__mro__[:-1]:  # not object
        parameters = inspect.signature(klass).parameters.values()
        for param in parameters:
            if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                params.setdefault(param.name, param)
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return list(params.values())


def unruled_keys():
    """``[(kind, name, key)]`` of constructor keys whose argument states no rule (no annotation, not a nested
    section): their rule is guessed from the default. A test keeps this empty."""
    return [(kind, name, key) for kind in KIND_NAMES if kind != "optimizer"
            for name in registry(kind) for key, item in component_keys(kind, name).items() if item.guessed]


def class_keys(node, kind):
    """``{key: Field}`` of the class the component ``node`` names (a framework by ``framework``); {} if none."""
    name = node.get("framework" if kind == "framework" else "name")
    return component_keys(kind, name) if name in registry(kind) else {}


def component_value(cfg, path):
    """A component's constructor key, e.g. ``"MODEL.backbone.num_seg"``: the config's value, else the default of the
    class the component's ``name`` selects (resolution does not fill in components' keys). Raises ConfigError: the
    component has no known ``name``, or the key is absent and has no default."""
    section_path, key = path.rsplit(".", 1)
    section = lookup(cfg, section_path)
    section = section if isinstance(section, dict) else {}
    if key in section:
        return section[key]
    kind = section_path.rsplit(".", 1)[-1]
    if section.get("name") not in registry(kind):
        raise ConfigError(f"the config has no {section_path}.name; add the {section_path} section")
    default = getattr(component_keys(kind, section["name"]).get(key), "default", MISSING)
    if default is MISSING:
        raise ConfigError(f"the config has no {path} and {section['name']} has no default for it; add it to the config")
    return default
