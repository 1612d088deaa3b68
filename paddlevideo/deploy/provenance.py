"""What an exported model was made from, recorded beside it, and checked before it is used.

A model file says nothing about the weights it holds: after ``tools/quantize.py``, exporting other weights
over ``TimeSformer.pdmodel`` left the old ``TimeSformer.int8.xml`` beside it, and ``--precision int8`` then
scored with the old weights without a word. So every model this project writes gets a provenance record, a
small JSON file written in the same staged step as the model itself:

- ``tools/export_model.py`` / ``main.py --export`` (``deploy/export.py``): ``<name>.provenance.json`` beside
  ``<name>.pdmodel`` (or PIR ``<name>.json``), ``<name>.pdiparams`` and ``<name>.onnx``;
- ``tools/quantize.py`` (``deploy/quantize.py``): ``<name>.int8.provenance.json`` beside ``<name>.int8.xml`` /
  ``.bin``.

A record holds (``"provenance": 1``, the format version):

- ``kind`` (``export`` / ``int8``) and ``precision`` (``fp32`` / ``int8``);
- ``files``: ``{file name: "sha256:<hex>"}`` of every file of the set, so a file replaced after the record was
  written (a partial re-export, a file copied over) is seen;
- ``weights``: the training checkpoint exported (``file`` as given, ``sha256``), or None for random weights;
- ``model``: the config shape that makes the model's function: the input shape ``[N, 3, V*T, H, W]`` and
  ``MODEL.head.num_classes``, ``MODEL.backbone.num_seg`` / ``img_size`` / ``patch_size`` / ``embed_dim`` /
  ``depth`` / ``num_heads`` / ``attention_type`` (config keys as names);
- ``source`` (derived models: int8): ``{file name: digest}`` of the model files it was made from, and the
  source's own ``weights`` carried over.

:func:`check_model_files` runs before ``tools/predict.py``, ``main.py --test --model_file`` and
``tools/quantize.py`` use a model: a file that is not the one recorded, an int8 model quantized from another
``.pdmodel`` than the one beside it now, or a config whose shape differs from the model's, is one line naming
both. A model without a record (exported by PaddleVideo, or by an older version) is used as before; only an int8
model without one gets a warning (whether it is stale cannot be told).
"""

import hashlib
import json
import os

from ..common.errors import InputError
from ..common.logger import get_logger
from .errors import PredictError

VERSION = 1
SUFFIX = ".provenance.json"
INT8_SUFFIX = ".int8.xml"
# Model formats an export of this project writes under its model name: one of them in a folder with a record
# that does not list it is a file of an earlier export.
EXPORT_EXTENSIONS = (".pdmodel", ".json", ".onnx", ".pdiparams")
# Config keys whose values make the model's function (compared with the config a model is used with).
SHAPE_KEYS = ("MODEL.head.num_classes", "MODEL.backbone.num_seg", "MODEL.backbone.img_size",
              "MODEL.backbone.patch_size", "MODEL.backbone.embed_dim", "MODEL.backbone.depth",
              "MODEL.backbone.num_heads", "MODEL.backbone.attention_type")
_CHUNK = 1 << 20
_digests = {}  # (real path, size, mtime_ns) -> digest: a file is hashed once per process


def sidecar_path(model_file):
    """The record of ``model_file``: ``dir/X.pdmodel`` (``.json``, ``.onnx``, ``.pdiparams``, an OpenVINO ``.xml``)
    -> ``dir/X.provenance.json``; ``dir/X.int8.xml`` / ``.int8.bin`` -> ``dir/X.int8.provenance.json``."""
    model_file = os.fspath(model_file)
    if model_file.endswith(SUFFIX):
        return model_file
    return os.path.splitext(model_file)[0] + SUFFIX


def file_digest(path):
    """``"sha256:<hex>"`` of the file ``path`` (cached per process by path, size and modification time)."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                sha.update(chunk)
        _digests[key] = "sha256:" + sha.hexdigest()
    return _digests[key]


def model_shape(cfg, input_shape=None):
    """``{config key: value}`` of :data:`SHAPE_KEYS` (schema defaults for absent keys), plus ``input_shape`` when
    given (``[None, 3, V*T, H, W]``)."""
    from ..config.schema import component_value

    shape = {}
    for key in SHAPE_KEYS:
        try:
            shape[key] = component_value(cfg, key)
        except Exception:  # a config without that component: nothing to record or compare for it
            continue
    if input_shape is not None:
        shape["input_shape"] = list(input_shape)
    return shape


def export_record(cfg, weights_path, input_shape, files):
    """The record of an export: ``files`` are the written paths (their digests are taken now)."""
    weights = None
    if weights_path:
        weights = {"file": os.fspath(weights_path), "sha256": file_digest(weights_path)}
    return {"provenance": VERSION, "kind": "export", "precision": "fp32",
            "files": {os.path.basename(p): file_digest(p) for p in files},
            "weights": weights, "model": model_shape(cfg, input_shape)}


def derived_record(source_files, files, precision, source_record=None, input_shape=None, **extra):
    """The record of a model made from another (``source_files``: the model files read, e.g. the ``.pdmodel`` and
    its ``.pdiparams``; ``files``: the new model's files). What the source's record says it was made from is
    carried over."""
    source_record = source_record or {}
    model = dict(source_record.get("model") or {})
    if input_shape is not None:
        model["input_shape"] = list(input_shape)
    record = {"provenance": VERSION, "kind": precision, "precision": precision,
              "files": {os.path.basename(p): file_digest(p) for p in files},
              "source": {os.path.basename(p): file_digest(p) for p in source_files if p and os.path.isfile(p)},
              "weights": source_record.get("weights"), "model": model}
    record.update(extra)
    return record


def write_record(path, record):
    """Write ``record`` as JSON to ``path`` (a staging path: the caller moves it into place)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
        handle.write("\n")
    return path


def read_record(model_file):
    """The record of ``model_file`` (a dict), or None when it has none.

    Raises:
        InputError: the record exists but is not one (not JSON, another format); the message names it.
    """
    path = sidecar_path(model_file)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError) as err:  # ValueError: JSON and UTF-8 decoding
        raise InputError(f"provenance record '{path}' of '{model_file}' cannot be read ({err}); export the model "
                         "again, or delete the record to use the model unchecked") from None
    if not isinstance(record, dict) or record.get("provenance") != VERSION or not isinstance(record.get("files"), dict):
        raise InputError(f"'{path}' is not a provenance record of this project (version {VERSION}); export the model "
                         "again, or delete it to use the model unchecked")
    return record


def is_int8(model_file):
    """Whether ``model_file`` is a quantized (int8) model: its record says so, or it is an OpenVINO ``.xml`` with
    FakeQuantize operations (NNCF's int8 form), whatever its name."""
    record = read_record(model_file)
    if record is not None:
        return record.get("precision") == "int8"
    if not os.fspath(model_file).endswith(".xml") or not os.path.isfile(model_file):
        return False
    with open(model_file, "rb") as handle:
        for line in handle:
            if b'type="FakeQuantize"' in line:
                return True
    return False


def companion_files(model_file, params_file=None):
    """The files a runtime reads for ``model_file``: itself and its weights (the ``.pdiparams`` of a ``.pdmodel`` /
    ``.json``, the ``.bin`` of an OpenVINO ``.xml``) where they exist."""
    model_file = os.fspath(model_file)
    base, ext = os.path.splitext(model_file)
    weights = None
    if ext in (".pdmodel", ".json"):
        weights = params_file or base + ".pdiparams"
    elif ext == ".xml":
        weights = base + ".bin"
    return [model_file] + ([weights] if weights and os.path.isfile(weights) else [])


def check_model_files(model_file, cfg=None, params_file=None):
    """Check ``model_file`` (the file that will run) against its record before it is used; returns the record or
    None (no record: a model exported by PaddleVideo or an older version is used unchecked).

    Raises:
        PredictError: a file differs from the one recorded, a file of the export's name is not in its record (an
            earlier export's), an int8 model was quantized from another model than the one beside it now, or
            ``cfg`` gives the model another shape (each one line naming the files or keys, and what to do).
    """
    model_file = os.fspath(model_file)
    record = read_record(model_file)
    record_path = sidecar_path(model_file)
    if record is None:
        if is_int8(model_file):
            get_logger().warning("'%s' has no provenance record (%s): whether it was quantized from the model beside "
                                 "it cannot be checked; run tools/quantize.py again to get one", model_file,
                                 os.path.basename(record_path))
        return None
    files = record["files"]
    for path in companion_files(model_file, params_file):
        name = os.path.basename(path)
        recorded = files.get(name)
        if recorded is None and path != model_file and record.get("kind") == "export" and name.endswith(".pdiparams"):
            # a --params_file of another name: compare it with the export's weights file, whatever its name
            recorded = next((d for n, d in files.items() if n.endswith(".pdiparams")), None)
        if recorded is None:
            if path == model_file or name.endswith(EXPORT_EXTENSIONS):
                raise PredictError(f"'{path}' is not part of the model recorded in '{record_path}' (a file of an "
                                   f"earlier export?); export again (with --onnx for an .onnx) or quantize again")
            continue
        if file_digest(path) != recorded:
            raise PredictError(f"'{path}' is not the file recorded in '{record_path}' (it was replaced after that "
                               "export or quantization); export (or quantize) the model again")
    _check_source(model_file, record, record_path)
    if cfg is not None:
        _check_shape(model_file, record, cfg)
    return record


def _check_source(model_file, record, record_path):
    folder = os.path.dirname(os.path.abspath(model_file))
    for name, digest in (record.get("source") or {}).items():
        path = os.path.join(folder, name)
        if os.path.isfile(path) and file_digest(path) != digest:
            raise PredictError(f"'{model_file}' is stale: it was made from another '{name}' than the one beside it "
                               f"now (re-exported since; recorded in '{record_path}'); run tools/quantize.py again "
                               "on the new model")


def _check_shape(model_file, record, cfg):
    recorded = record.get("model") or {}
    current = model_shape(cfg)
    for key in SHAPE_KEYS:
        if key in recorded and key in current and recorded[key] != current[key]:
            raise PredictError(f"'{model_file}' was made with {key}={recorded[key]} but the config gives "
                               f"{current[key]}; pass the config the model was exported with (or export it again)")


def stale_derived_files(folder, name):
    """Models derived from an earlier export of ``name`` in ``folder`` (an int8 model): they no longer match it."""
    int8 = os.path.join(folder, name + INT8_SUFFIX)
    return [int8] if os.path.isfile(int8) else []
