"""Export a trained model for deployment: Paddle Inference (``.pdmodel`` or PIR ``.json``) and ONNX.

One implementation behind ``main.py --export`` and ``tools/export_model.py``.

The exported graph takes one float32 tensor ``[N, 3, num_seg * 3, target_size, target_size]`` (the
three ``UniformCrop`` views back to back on the time axis, ``num_seg`` and ``target_size`` from the
``INFERENCE`` section; ``N`` is dynamic) and returns the view-averaged logits ``[N, num_classes]``
(the model's ``infer`` mode). Softmax is left to the caller.

What is traced is :func:`~paddlevideo.modeling.inference.prepare_for_inference` of the trained model (a
copy: q/k/v split with the scale folded, ``temporal_fc`` merged, plain matmul-softmax-matmul attention);
nothing else here is model-specific.

Paddle 3.3 facts this module works around:
- ``paddle.jit.save`` writes the PIR ``.json`` by default; the seed's ``.pdmodel`` (read by Paddle
  Inference 2.6 and 3.x) comes from tracing under ``paddle.pir_utils.OldIrGuard``.
- Under the old IR, the APIs Paddle 3.3 routes straight to C++ (``paddle.matmul``, ``F.gelu``, ...)
  reject the old graph's variables; :func:`paddlevideo.compat.old_ir_ops.old_ir_ops` appends the equivalent
  old-IR operators while tracing (``F.scaled_dot_product_attention`` has no old-IR form at all, hence the
  plain attention).
- ``paddle2onnx`` converts the PIR program (its own ``.pdmodel`` -> PIR translation crashes), so an
  ONNX export always traces the PIR form, in a temporary folder when the user asked for ``.pdmodel``.
"""

import errno
import os
import tempfile

import numpy as np
import paddle

from ..compat.old_ir_ops import old_ir_ops
from ..common.errors import ConfigError, first_line
from ..common.files import describe_os_error, prepare_output_dir
from ..common.logger import get_logger
from ..common.overwrite import refuse_overwriting_inputs
from ..common.staging import staged_files
from . import provenance

FORMATS = ("pdmodel", "pir")
# The test pipeline's UniformCrop yields 3 spatial views per clip (PaddleVideo's 1 clip x 3 crops).
NUM_VIEWS = 3
# Opset 17 has LayerNormalization as one node, which ONNX Runtime runs as a fused kernel.
DEFAULT_OPSET = 17
INPUT_NAME = "data_batch_0"  # PaddleVideo's exported input name


class ExportError(ConfigError):
    """Export cannot proceed (weights, output folder, format); the message names the file or flag."""


def export_input_shape(cfg, num_views=None):
    """``[None, 3, num_seg * num_views, target_size, target_size]`` from ``cfg.INFERENCE``
    (``num_views`` defaults to the test protocol's 3 crops)."""
    infer_cfg = cfg.get("INFERENCE") or {}
    missing = [key for key in ("num_seg", "target_size") if key not in infer_cfg]
    if missing:
        raise ConfigError(f"INFERENCE.{missing[0]} is missing from the config; export needs INFERENCE.num_seg "
                          "and INFERENCE.target_size")
    num_seg, target_size = int(infer_cfg["num_seg"]), int(infer_cfg["target_size"])
    return [None, 3, num_seg * int(num_views or NUM_VIEWS), target_size, target_size]


def _require_weights(weights_path, random_init):
    if not weights_path and not random_init:
        raise ExportError("no weights given: pass the trained .pdparams with -p (tools/export_model.py) or "
                          "-w (main.py --export)")


def build_export_model(cfg, weights_path, random_init=False, trust_pickle=False):
    """The model in ``infer`` mode with ``weights_path`` loaded, in its inference form
    (:func:`~paddlevideo.modeling.inference.prepare_for_inference`: exportable to every format, same
    numbers), wrapped for tracing. ``pretrained`` is cleared (the full checkpoint replaces every weight).
    """
    from ..modeling.builder import build_model_with_weights
    from ..modeling.inference import prepare_for_inference

    _require_weights(weights_path, random_init)
    if not weights_path:
        get_logger().warning("exporting randomly initialised weights (no weights file given)")
    wrapped = InferenceModel(prepare_for_inference(build_model_with_weights(cfg.MODEL, weights_path or None,
                                                                            trust_pickle=trust_pickle)))
    wrapped.eval()
    return wrapped


class InferenceModel(paddle.nn.Layer):
    """``imgs [N, 3, V*num_seg, H, W]`` -> view-averaged logits ``[N, num_classes]``.

    A named single-tensor ``forward`` so the traced program has one feed, ``data_batch_0``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, data_batch_0):
        return self.model([data_batch_0], mode="infer")


def export_model(cfg, weights_path, output_dir, fmt="pdmodel", onnx=False, opset=None, random_init=False,
                 num_views=None, trust_pickle=False, inputs=()):
    """Write the inference model of ``cfg`` with ``weights_path`` into ``output_dir``.

    Args:
        cfg: the full config (``MODEL``, ``INFERENCE``, ``model_name``).
        weights_path: full-checkpoint ``.pdparams`` (training output); None only with ``random_init``.
        output_dir: folder for ``<model_name>.*`` (created).
        fmt: ``pdmodel`` (``.pdmodel`` + ``.pdiparams``, Paddle Inference 2.6 and 3.x) or ``pir``
            (``.json`` + ``.pdiparams``, Paddle 3.x only).
        onnx: also write ``<model_name>.onnx`` (via paddle2onnx, dynamic batch).
        opset: ONNX opset (default :data:`DEFAULT_OPSET`).
        random_init: allow exporting without weights (tests, smoke runs).
        num_views: views per clip in the input (default 3, the test protocol; tools/benchmark.py uses 1).
        trust_pickle: read ``weights_path`` with full unpickling (``--trust-pickle``; ``utils.save_load.load``).
        inputs: other files the caller read, ``(flag, path)`` pairs (e.g. ``("-c", config)``): like the weights,
            none of them may be overwritten by the export.
    Returns:
        dict of written paths: ``model``, ``params``, ``provenance`` (the record of what the files were made
        from, ``deploy/provenance.py``) and, with ``onnx``, ``onnx``.
    Raises:
        ExportError: bad format, no/missing weights, unwritable output dir, failed conversion.
        CheckpointError: the weights belong to another config (names the mismatched keys).
    """
    logger = get_logger()
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'; use one of {', '.join(FORMATS)}")
    if weights_path and not os.path.isfile(weights_path):
        raise ExportError(f"weights file '{weights_path}' not found; pass the .pdparams written by training")
    _require_weights(weights_path, random_init)
    if (fmt == "pir" or onnx) and not paddle.get_flags("FLAGS_enable_pir_api")["FLAGS_enable_pir_api"]:
        # Parameters created under the old IR cannot be traced into a PIR program.
        raise ExportError("FLAGS_enable_pir_api=0 is set in the environment: --format pir and --onnx need the PIR "
                          "API; unset it (the default .pdmodel export needs no flag)")
    shape = export_input_shape(cfg, num_views)
    prepare_output_dir(output_dir, "output dir", ExportError)
    model_name = cfg.get("model_name") or "model"
    _refuse_overwriting(weights_path, inputs, output_dir, model_name, fmt, onnx)
    model = build_export_model(cfg, weights_path, random_init, trust_pickle)
    # Everything is written into a hidden folder first and moved in only when complete and checked: a failed
    # or killed export leaves no file that looks like a model (a killed one leaves only the hidden folder). The
    # provenance record moves in first: a set whose moving-in was cut short does not match it, and says so.
    try:
        with staged_files(output_dir, model_name) as stage:
            staged = _write_formats(model, stage.path(model_name), shape, fmt, onnx, opset)
            _verify_written(staged, model, shape)
            record = provenance.export_record(cfg, weights_path, shape, staged.values())
            record_name = model_name + provenance.SUFFIX
            provenance.write_record(stage.path(record_name), record)
            programs = [os.path.basename(staged[k]) for k in ("model", "onnx") if k in staged]
            stage.commit(order=[record_name, os.path.basename(staged["params"])] + programs)
    except OSError as err:
        raise ExportError(f"cannot write the exported model into '{output_dir}' ({describe_os_error(err)}); free "
                          "some space or pass another folder with -o; nothing was written there") from None
    written = {kind: os.path.join(output_dir, os.path.basename(path)) for kind, path in staged.items()}
    written["provenance"] = os.path.join(output_dir, record_name)
    logger.info("exported %s + %s (input %s '%s')", written["model"], written["params"], shape, INPUT_NAME)
    if onnx:
        logger.info("exported %s (opset %d, dynamic batch)", written["onnx"], int(opset or DEFAULT_OPSET))
    for stale in provenance.stale_derived_files(output_dir, model_name):
        logger.warning("%s was made from the model this export replaced: it is stale (predict.py and main.py --test "
                       "refuse it); run tools/quantize.py again", stale)
    return written


def _refuse_overwriting(weights_path, inputs, output_dir, model_name, fmt, onnx):
    """None of the files about to be written may be an input (the weights, the caller's ``inputs``)."""
    names = [model_name + (".pdmodel" if fmt == "pdmodel" else ".json"), model_name + ".pdiparams",
             model_name + provenance.SUFFIX] + ([model_name + ".onnx"] if onnx else [])
    refuse_overwriting_inputs([("output", os.path.join(output_dir, name)) for name in names],
                              [("weights", weights_path), *inputs], error=ExportError)


def _write_formats(model, prefix, shape, fmt, onnx, opset):
    """Trace ``model`` to ``prefix``.{pdmodel|json} + .pdiparams (+ .onnx); returns the paths by kind."""
    spec = [paddle.static.InputSpec(list(shape), "float32", INPUT_NAME)]
    written = {"params": prefix + ".pdiparams"}
    if fmt == "pdmodel":
        with paddle.pir_utils.OldIrGuard(), old_ir_ops():
            paddle.jit.save(model, prefix, input_spec=spec)
        written["model"] = prefix + ".pdmodel"
    else:
        paddle.jit.save(model, prefix, input_spec=spec)
        written["model"] = prefix + ".json"
    if onnx:
        written["onnx"] = prefix + ".onnx"
        opset = int(opset or DEFAULT_OPSET)
        if fmt == "pir":
            _to_onnx(written["model"], written["params"], written["onnx"], opset)
        else:
            with tempfile.TemporaryDirectory(prefix="pir_export_", dir=os.path.dirname(prefix)) as tmp:
                tmp_prefix = os.path.join(tmp, os.path.basename(prefix))
                paddle.jit.save(InferenceModel(model.model), tmp_prefix, input_spec=spec)
                _to_onnx(tmp_prefix + ".json", tmp_prefix + ".pdiparams", written["onnx"], opset)
    return written


def _verify_written(written, model, shape):
    """Raise ``OSError(EIO)`` unless every file is complete. Paddle's C++ writer does not report a short write
    (a full disk or a file-size limit leaves a truncated ``.pdiparams`` and no error), so the files are
    checked: each program file must declare the traced input, the weights files must hold every parameter."""
    from .model_input import declared_input_shape

    param_bytes = sum(int(np.prod(p.shape)) * p.element_size() for p in model.state_dict().values())
    for kind, path in written.items():
        if kind in ("model", "onnx") and declared_input_shape(path) != list(shape):
            raise OSError(errno.EIO, f"'{os.path.basename(path)}' was written incomplete")
        if kind in ("params", "onnx") and os.path.getsize(path) < param_bytes:
            raise OSError(errno.EIO, f"'{os.path.basename(path)}' was written incomplete ({os.path.getsize(path)} of "
                          f"at least {param_bytes} bytes)")


def _to_onnx(model_file, params_file, onnx_file, opset):
    try:
        import paddle2onnx
    except ImportError:
        raise ExportError("--onnx needs paddle2onnx: pip install paddle2onnx") from None
    try:
        paddle2onnx.export(model_file, params_file, onnx_file, opset_version=opset, auto_upgrade_opset=False,
                           enable_onnx_checker=True)
    except OSError:
        raise  # a full disk or an unwritable folder: export_model says so about the output folder
    except Exception as err:  # paddle2onnx raises bare Exceptions / RuntimeErrors with long texts
        raise ExportError(f"paddle2onnx could not convert '{model_file}' at opset {opset}: "
                          f"{first_line(err)}") from err
    if not os.path.isfile(onnx_file):
        raise ExportError(f"paddle2onnx wrote no '{onnx_file}' at opset {opset}; try another --opset (>= 11)")
