"""Choosing and building a :class:`~.backends.base.Predictor` for an exported model, the precision a CPU run
computes, and :class:`ExportedModel`, the predictor where the test loop expects a model (``main.py --test
--model_file ...`` scores ``DATASET.test`` through the same loop and metric)."""

import numpy as np

from .errors import PredictError

BACKENDS = ("paddle", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def default_backend(model_file, precision):
    """The backend for ``model_file`` when none is named: OpenVINO for its ``.xml`` and for bf16 / int8 (only
    OpenVINO has them on a CPU), ONNX Runtime for ``.onnx``, else Paddle Inference."""
    if model_file.endswith(".xml") or precision in ("fp16", "bf16", "int8"):
        return "openvino"
    return "onnxruntime" if model_file.endswith(".onnx") else "paddle"


def build_predictor(model_file, backend, precision="fp32", params_file=None, cpu_threads=None, use_gpu=False,
                    **paddle_settings):
    """A predictor ``(imgs [N, 3, V*T, H, W] float32 numpy) -> scores [N, num_classes]`` for ``backend``;
    ``precision`` is the resolved one (``predict.resolve_cpu_precision``). ``use_gpu`` applies to Paddle
    Inference and ONNX Runtime; ``paddle_settings`` are :func:`~.backends.paddle_inference.paddle_inference_config`'s other
    options (TensorRT, oneDNN, IR optimisation, ...). An ``.onnx`` whose data files lie outside its folder
    or an ``.xml`` with a DOCTYPE is refused first (:func:`.model_files.check_model_file`)."""
    from .model_files import check_model_file

    check_model_file(model_file)
    if backend == "openvino":
        from .backends.openvino_runtime import OpenVINOPredictor

        return OpenVINOPredictor(model_file, precision, cpu_threads=cpu_threads, params_file=params_file)
    if backend == "onnxruntime":
        from .backends.onnx_runtime import OnnxPredictor

        return OnnxPredictor(model_file, use_gpu=use_gpu, cpu_threads=cpu_threads)
    from .backends.paddle_inference import PaddlePredictor

    return PaddlePredictor(model_file, params_file, use_gpu=use_gpu, precision=precision, cpu_threads=cpu_threads,
                           **paddle_settings)


def resolve_cpu_precision(backend, precision, flags=None):
    """The precision a CPU run computes for ``--backend``/``--precision``, and a note for the user (or None).

    ``fp16`` on a CPU means bf16, as in PaddleVideo's predictor. bf16 needs bf16 hardware
    (:func:`~paddlevideo.common.cpu_features.has_bf16`); without it the run is fp32 and the note says so
    (an emulated bf16 would be slower than fp32). Only OpenVINO has CPU bf16 and int8 here.

    Raises:
        PredictError: ``paddle`` or ``onnxruntime`` asked for bf16 / int8 (one line saying what works).
    """
    from ..common.cpu_features import cpu_flags, has_bf16

    note = None
    if precision == "fp16":
        precision, note = "bf16", "--precision fp16 on a CPU means bf16 (as in PaddleVideo)"
    if precision == "fp32" or backend == "openvino" and precision == "int8":
        return precision, note
    if backend == "paddle":
        if precision == "int8":
            raise PredictError("--backend paddle has no CPU int8; quantize with tools/quantize.py and run "
                               "--backend openvino --precision int8")
        raise PredictError("--backend paddle cannot run bf16 on a CPU (Paddle Inference's oneDNN bf16 fails on this "
                           "model, docs/deploy.md); use --backend openvino --precision bf16")
    if backend == "onnxruntime":
        raise PredictError(f"--backend onnxruntime has no {precision} model; use --backend openvino --precision "
                           f"{precision}" + (" after tools/quantize.py" if precision == "int8" else ""))
    flags = cpu_flags() if flags is None else flags
    if not has_bf16(flags, _openvino_capabilities() if not flags else None):
        return "fp32", "this CPU has no bf16 (no avx512_bf16 / amx_bf16): computing fp32, which is faster than emulated bf16"
    return "bf16", note


def _openvino_capabilities():
    try:
        import openvino

        return openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # no OpenVINO, or no CPU plugin: no evidence of bf16
        return ()


def checked_model_file(model_file, cfg, backend, precision, params_file=None):
    """Before a predictor is built: the file that will run (``<stem>.int8.xml`` for OpenVINO int8 given the fp32
    export) must take the config's clips (``model_input.check_model_input``) and be the model its provenance
    record describes (``provenance.check_model_files``: not replaced, not stale, made with this config's shape).

    Returns ``(file, precision)``: the precision is ``int8`` for a quantized model whatever was asked (an int8
    model computes int8; a note says so when another was asked).

    Raises:
        PredictError: the file is missing, takes other clips, or does not match its record (one line).
    """
    from .backends.openvino_runtime import existing_int8_model
    from .model_files import check_file
    from .model_input import check_model_input
    from .provenance import check_model_files, is_int8

    check_file(model_file, "model file")
    run_file = model_file
    if backend == "openvino" and precision == "int8" and not model_file.endswith(".xml"):
        run_file, params_file = existing_int8_model(model_file), None
    check_model_input(run_file, cfg)
    check_model_files(run_file, cfg, params_file)
    if precision != "int8" and is_int8(run_file):
        if precision != "fp32":
            from ..common.logger import get_logger

            get_logger().warning("'%s' is an int8 model: it computes int8, not %s", run_file, precision)
        precision = "int8"
    return run_file, precision


class ExportedModel:
    """``model(data, mode='test')`` of the test loop on a predictor: ``data[0]`` is the batch
    ``[N, 3, V*T, H, W]`` (paddle tensor or numpy), the result the view-averaged scores ``[N, num_classes]``
    (numpy), as the dygraph model's ``test`` mode returns them."""

    def __init__(self, predictor):
        self.predictor = predictor

    def __call__(self, data, mode="test"):
        imgs = data[0]
        imgs = imgs.numpy() if hasattr(imgs, "numpy") else np.asarray(imgs)
        return self.predictor(imgs)
