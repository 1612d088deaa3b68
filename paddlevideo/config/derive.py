"""Keys filled in when absent, and the values that must agree (docs/config.md, "Facts stated once" and "Where
defaults live"): :func:`fill_defaults`, :func:`derive`, :func:`check_agreement`."""

from ..common.errors import ConfigError
from ..common.logger import get_logger
from . import schema as s
from .attrdict import AttrDict, lookup
from .validate import dotted


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


def derive(cfg, origins):
    """Fill the derived keys that ``cfg`` (checked by :func:`validate.check`) leaves out, in place; ``origins`` records
    where they came from. Returns ``{key path: value}`` of the keys it filled in (list indices as ints)."""
    filled = {}
    for node, key, path, source, value, _ in _links(cfg):
        if key not in node and value is not None:
            node[key] = filled[path + (key,)] = value
            origins[tuple(str(p) for p in path) + (key,)] = f"derived from {source}"
    return filled


def check_agreement(cfg, origins):
    """Raise :class:`ConfigError` where stated values disagree in a way that breaks the model; log a warning for
    the legal mismatches. ``origins`` lets messages say which values were derived."""
    backbone = _backbone(cfg)
    if backbone is None:
        return

    def label(key, value):
        where = origins.get(tuple(key.split(".")), "")
        return f"{key} ({value}, {where})" if where.startswith("derived") else f"{key} ({value})"

    for node, key, path, source, value, why in _links(cfg):
        where = dotted(path + (key,))
        stated = _frames_per_view(node) if path[-1] == "sample" else node.get(key)
        if stated is None or stated == value:
            continue
        if why:
            raise ConfigError(f"{label(source, value)} and {label(where, stated)} disagree: {why}; set {where} to "
                              f"{value} or leave it out to follow {source}")
        if path[-1] == "sample":  # train or valid clips of another length: legal
            get_logger().warning("config: %s gives %d frames per clip, MODEL.backbone.num_seg is %d: the time "
                                 "embedding is resized to %d frames", where, stated, value, stated)
    _check_crops_fit(cfg)
    for key, unit, why in (("img_size", "patch_size", "frames are cut into whole patches"),
                           ("embed_dim", "num_heads", "each head gets embed_dim / num_heads channels")):
        size, step = _effective(backbone, key), _effective(backbone, unit)
        if size and step and size % step:
            raise ConfigError(f"MODEL.backbone.{key} ({size}) must be a multiple of MODEL.backbone.{unit} ({step}): "
                              f"{why}")


def _links(cfg):
    """``(node, key, path, source, value, why)`` of each key that follows another (docs/config.md's table), in the
    order :func:`derive` fills them: ``node[key]``, at ``path``, follows the key ``source``, whose value is ``value``;
    ``why`` says what a stated value that differs breaks (``""``: it is legal). A generator: the links after the first
    read ``MODEL.runtime_cfg.test.num_seg`` once the caller has handled the first (filled it in)."""
    backbone = _backbone(cfg)
    if backbone is None:
        return
    num_seg = ("MODEL.backbone.num_seg", _effective(backbone, "num_seg"))
    img_size = ("MODEL.backbone.img_size", _effective(backbone, "img_size"))
    test = num_seg
    if "runtime_cfg" in s.class_keys(cfg.MODEL, "framework"):
        runtime = cfg.MODEL
        for key in ("runtime_cfg", "test"):  # made where absent, to hold the derived num_seg
            if not isinstance(runtime.get(key), dict):
                runtime[key] = AttrDict()
            runtime = runtime[key]
        yield runtime, "num_seg", ("MODEL", "runtime_cfg", "test"), *num_seg, ""
        test = ("MODEL.runtime_cfg.test.num_seg", runtime.get("num_seg"))
    if isinstance(cfg.get("INFERENCE"), dict):
        yield (cfg.INFERENCE, "num_seg", ("INFERENCE",), *test,
               "the exported model cuts its input into views of the former")
        yield (cfg.INFERENCE, "target_size", ("INFERENCE",), *img_size,
               "the exported model takes frames of img_size only")
    cut = "the model cuts each test clip into views of the former"
    for mode in s.PIPELINE_MODES:  # train and valid clips of another length are legal (a warning)
        source, why = (test, cut) if mode == "test" else (num_seg, "")
        for step in ("decode", "sample"):
            op = lookup(cfg, f"PIPELINE.{mode}.{step}")
            if isinstance(op, dict) and "num_seg" in s.class_keys(op, "operator"):  # decode's window may be longer
                yield op, "num_seg", ("PIPELINE", mode, step), *source, why if step == "sample" else ""
    for path, item, name, params in _transforms(cfg):
        if "target_size" in s.component_keys("operator", name):  # a crop; '- RandomCrop:' gets keys to fill in
            if params is None:
                params = item[name] = AttrDict()
            yield params, "target_size", path, *img_size, "the patch embedding takes frames of img_size only"
    head = cfg.MODEL.get("head")
    if (isinstance(head, dict) and "in_channels" in s.class_keys(head, "head")
            and "embed_dim" in s.class_keys(backbone, "backbone")):
        yield (head, "in_channels", ("MODEL", "head"), "MODEL.backbone.embed_dim", _effective(backbone, "embed_dim"),
               "the head reads the backbone's feature")


def _check_crops_fit(cfg):
    """JitterScale ranges must be ordered; a crop larger than the short side before it is warned about."""
    for path, _, _, params in _transforms(cfg):
        params = params or {}
        where = dotted(path)
        if path[3] == 0:  # a mode's first transform: no JitterScale before it
            short = None
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
    backbone = lookup(cfg, "MODEL.backbone")
    return backbone if isinstance(backbone, dict) and backbone.get("name") in s.registry("backbone") else None


def _effective(node, key, kind="backbone"):
    """``node[key]``, else the constructor default of the class ``node`` names (None if it has none)."""
    if key in node:
        return node[key]
    default = getattr(s.class_keys(node, kind).get(key), "default", s.MISSING)
    return None if default is s.MISSING else default


def transform_items(cfg, mode):
    """The items of ``PIPELINE.<mode>.transform``, none where the config has none."""
    return lookup(cfg, f"PIPELINE.{mode}.transform") or []


def _transforms(cfg):
    """``(path, item, name, params)`` of every transform item of every mode, in order (``params`` None for
    ``- RandomFlip:``)."""
    for mode in s.PIPELINE_MODES:
        for index, item in enumerate(transform_items(cfg, mode)):
            (name, params), = item.items()
            yield ("PIPELINE", mode, "transform", index, name), item, name, params


def _frames_per_view(sample):
    """Frames the sample step gives per view: ``num_seg``, times ``seg_len`` for segment sampling."""
    frames = _effective(sample, "num_seg", "operator")
    if not _effective(sample, "linspace_sample", "operator"):
        frames *= _effective(sample, "seg_len", "operator") or 1
    return frames
