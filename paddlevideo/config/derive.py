"""Keys filled in when absent, and the values that must agree (docs/config.md, "Facts stated once").

- :func:`fill_defaults`: the engine keys' schema defaults (``epochs``, ``DATASET.num_workers``, ...; the test and
  validation batch sizes default to ``DATASET.batch_size``);
- :func:`derive`: keys that follow another key: the frame count, image size and feature width follow
  ``MODEL.backbone`` (a backbone key that is absent too counts with its constructor default) into the test views,
  the export input, the pipelines and the head;
- :func:`check_agreement`: stated values that would break the model are an error naming both keys and values;
  legal mismatches (train clips of another length, a crop larger than the short side) are a warning.
"""

from ..utils.errors import ConfigError
from ..utils.logger import get_logger
from . import schema as s
from .attrdict import AttrDict
from .validate import dotted

TEST_VIEW_KEY = ("MODEL", "runtime_cfg", "test", "num_seg")


def fill_defaults(cfg, origins):
    """Put the schema default of every engine key ``cfg`` leaves out into the sections it has (in place);
    ``origins`` records them as ``default``. Returns ``{key path: value}`` of the keys it filled in."""
    filled = _fill_section(cfg, s.top_level(), (), origins)
    dataset = cfg.get("DATASET")
    if isinstance(dataset, dict) and "batch_size" in dataset:
        for key in ("test_batch_size", "valid_batch_size"):  # the schema's "default DATASET.batch_size"
            if key not in dataset:
                dataset[key] = filled[("DATASET", key)] = dataset["batch_size"]
                origins[("DATASET", key)] = "default (DATASET.batch_size)"
    return filled


def _fill_section(node, spec, path, origins):
    filled = {}
    for key, field in spec.fields.items():
        if key not in node and field.default is not s.MISSING:
            node[key] = filled[path + (key,)] = field.default
            origins[path + (key,)] = "default"
        elif isinstance(field.spec, s.Section) and isinstance(node.get(key), dict):
            filled.update(_fill_section(node[key], field.spec, path + (key,), origins))
    return filled


def derive(cfg, origins=None):
    """Fill the derived keys that ``cfg`` (checked by :func:`validate.check`) leaves out, in place; ``origins`` records
    where they came from. Returns ``{key path: value}`` of the keys it filled in (list indices as ints)."""
    filled, origins = {}, origins if origins is not None else {}

    def fill(node, key, value, path, source):
        """``node[key] = value`` unless present (recorded); returns the value ``node[key]`` ends up with."""
        if key not in node and value is not None:
            node[key] = filled[tuple(path) + (key,)] = value
            origins[tuple(str(p) for p in path) + (key,)] = f"derived from {source}"
        return node.get(key)

    backbone = _backbone(cfg)
    if backbone is None:
        return filled
    num_seg, img_size = _effective(backbone, "num_seg"), _effective(backbone, "img_size")
    test_frames = num_seg
    if "runtime_cfg" in _keys(cfg.MODEL, "framework"):
        runtime = _child(_child(cfg.MODEL, "runtime_cfg"), "test")
        test_frames = fill(runtime, "num_seg", num_seg, ("MODEL", "runtime_cfg", "test"), "MODEL.backbone.num_seg")
    if isinstance(cfg.get("INFERENCE"), dict):
        fill(cfg.INFERENCE, "num_seg", test_frames, ("INFERENCE",), dotted(TEST_VIEW_KEY))
        fill(cfg.INFERENCE, "target_size", img_size, ("INFERENCE",), "MODEL.backbone.img_size")
    for mode, step, op in _frame_steps(cfg):
        source = (dotted(TEST_VIEW_KEY), test_frames) if mode == "test" else ("MODEL.backbone.num_seg", num_seg)
        fill(op, "num_seg", source[1], ("PIPELINE", mode, step), source[0])
    for path, params in _crops(cfg):
        fill(params, "target_size", img_size, path, "MODEL.backbone.img_size")
    head = cfg.MODEL.get("head")
    if isinstance(head, dict) and "in_channels" in _keys(head, "head") and "embed_dim" in _keys(backbone, "backbone"):
        fill(head, "in_channels", _effective(backbone, "embed_dim"), ("MODEL", "head"), "MODEL.backbone.embed_dim")
    return filled


def check_agreement(cfg, origins=None):
    """Raise :class:`ConfigError` where stated values disagree in a way that breaks the model; log a warning for
    the legal mismatches. ``origins`` lets messages say which values were derived."""
    backbone = _backbone(cfg)
    if backbone is None:
        return
    origins = origins or {}

    def label(key, value):
        where = origins.get(tuple(key.split(".")), "")
        return f"{key} ({value}, {where})" if where.startswith("derived") else f"{key} ({value})"

    def agree(key_a, value_a, key_b, value_b, why):
        """Unless ``value_b`` is None or equals ``value_a``: an error naming both keys and values."""
        if value_b is not None and value_a != value_b:
            raise ConfigError(f"{label(key_a, value_a)} and {label(key_b, value_b)} disagree: {why}; set "
                              f"{key_b} to {value_a} or leave it out to follow {key_a}")

    num_seg, img_size = _effective(backbone, "num_seg"), _effective(backbone, "img_size")
    runtime = ((cfg.MODEL.get("runtime_cfg") or {}).get("test") or {})
    test_frames = runtime.get("num_seg", num_seg)
    test_key = dotted(TEST_VIEW_KEY) if "num_seg" in runtime else "MODEL.backbone.num_seg"
    infer = cfg.get("INFERENCE") or {}
    agree(test_key, test_frames, "INFERENCE.num_seg", infer.get("num_seg"),
          "the exported model cuts its input into views of the former")
    agree("MODEL.backbone.img_size", img_size, "INFERENCE.target_size", infer.get("target_size"),
          "the exported model takes frames of img_size only")
    for mode in s.PIPELINE_MODES:
        sample = ((cfg.get("PIPELINE") or {}).get(mode) or {}).get("sample")
        frames = _frames_per_view(sample)
        if frames is None:
            continue
        where = f"PIPELINE.{mode}.sample.num_seg"
        if mode == "test":
            agree(test_key, test_frames, where, frames, "the model cuts each test clip into views of the former")
        elif frames != num_seg:
            get_logger().warning("config: %s gives %d frames per clip, MODEL.backbone.num_seg is %d: the time "
                                 "embedding is resized to %d frames", where, frames, num_seg, frames)
    for path, params in _crops(cfg):
        agree("MODEL.backbone.img_size", img_size, dotted(path + ("target_size",)), params.get("target_size"),
              "the patch embedding takes frames of img_size only")
    _check_crops_fit(cfg)
    head = cfg.MODEL.get("head")
    if isinstance(head, dict) and "in_channels" in head and "embed_dim" in _keys(backbone, "backbone"):
        agree("MODEL.backbone.embed_dim", _effective(backbone, "embed_dim"), "MODEL.head.in_channels",
              head["in_channels"], "the head reads the backbone's feature")
    _check_backbone_shape(backbone)


def _check_backbone_shape(backbone):
    img_size, patch_size = _effective(backbone, "img_size"), _effective(backbone, "patch_size")
    if img_size and patch_size and img_size % patch_size:
        raise ConfigError(f"MODEL.backbone.img_size ({img_size}) must be a multiple of MODEL.backbone.patch_size "
                          f"({patch_size}): frames are cut into whole patches")
    dim, heads = _effective(backbone, "embed_dim"), _effective(backbone, "num_heads")
    if dim and heads and dim % heads:
        raise ConfigError(f"MODEL.backbone.embed_dim ({dim}) must be a multiple of MODEL.backbone.num_heads "
                          f"({heads}): each head gets embed_dim / num_heads channels")


def _check_crops_fit(cfg):
    """JitterScale ranges must be ordered; a crop larger than the short side before it is warned about."""
    for mode in s.PIPELINE_MODES:
        short = None
        for index, item in enumerate(_transform_items(cfg, mode)):
            (name, params), = item.items()
            params = params or {}
            where = f"PIPELINE.{mode}.transform.{index}.{name}"
            if "min_size" in params and "max_size" in params:
                if params["min_size"] > params["max_size"]:
                    raise ConfigError(f"{where}.min_size ({params['min_size']}) must be <= {where}.max_size "
                                      f"({params['max_size']})")
                short = params["min_size"]
            size = params.get("target_size")
            if size is not None and short is not None and size > short:
                get_logger().warning("config: %s.target_size %d is larger than the short side %d that the "
                                     "JitterScale before it may give; such clips fail to load", where, size, short)


# --- helpers ---------------------------------------------------------------------------------------

def _backbone(cfg):
    """``MODEL.backbone`` when it names a known backbone, else None (nothing to derive from)."""
    model = cfg.get("MODEL")
    backbone = model.get("backbone") if isinstance(model, dict) else None
    return backbone if isinstance(backbone, dict) and backbone.get("name") in s.registry("backbone") else None


def _keys(node, kind):
    """Constructor keys of the component ``node`` (its class named by ``name``, a framework's by ``framework``)."""
    name = node.get("framework" if kind == "framework" else "name")
    return s.component_keys(kind, name) if name in s.registry(kind) else {}


def _effective(node, key, kind="backbone"):
    """``node[key]``, else the constructor default of the class ``node`` names (None if it has none)."""
    if key in node:
        return node[key]
    spec = _keys(node, kind).get(key)
    return None if spec is None or spec.default is s.MISSING else spec.default


def _child(node, key):
    if not isinstance(node.get(key), dict):
        node[key] = AttrDict()
    return node[key]


def _frame_steps(cfg):
    """``(mode, step, mapping)`` of the decode / sample steps whose operator takes ``num_seg``."""
    for mode in s.PIPELINE_MODES:
        section = (cfg.get("PIPELINE") or {}).get(mode) or {}
        for step in ("decode", "sample"):
            op = section.get(step)
            if isinstance(op, dict) and "num_seg" in _keys(op, "operator"):
                yield mode, step, op


def _transform_items(cfg, mode):
    return ((cfg.get("PIPELINE") or {}).get(mode) or {}).get("transform") or []


def _crops(cfg):
    """``(path, params)`` of every transform whose operator takes ``target_size`` (the crops); a crop
    written ``- RandomCrop:`` gets an empty mapping so the size can be filled in."""
    for mode in s.PIPELINE_MODES:
        for index, item in enumerate(_transform_items(cfg, mode)):
            (name, params), = item.items()
            if "target_size" in s.component_keys("operator", name):
                if params is None:
                    params = item[name] = AttrDict()
                yield ("PIPELINE", mode, "transform", index, name), params


def _frames_per_view(sample):
    """Frames the sample step gives per view: ``num_seg``, times ``seg_len`` for segment sampling."""
    if not isinstance(sample, dict) or "num_seg" not in _keys(sample, "operator"):
        return None
    frames = _effective(sample, "num_seg", "operator")
    if not _effective(sample, "linspace_sample", "operator"):
        frames *= _effective(sample, "seg_len", "operator") or 1
    return frames
