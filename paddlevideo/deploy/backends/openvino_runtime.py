"""OpenVINO on the CPU: the exported model in fp32, bf16 or int8 (``tools/predict.py --backend openvino``).

OpenVINO reads the exported ``.pdmodel`` (+ ``.pdiparams``) and ``.onnx`` itself, and its own IR ``.xml``
(+ ``.bin``, e.g. the int8 model ``tools/quantize.py`` writes). It cannot read Paddle's PIR ``.json``
(OpenVINO 2026.4: "model format .json is not supported"), so a ``.json`` is converted with paddle2onnx into a
temporary file first (no step for the user).

Precision is always set explicitly: on CPUs with bf16 hardware (AVX512_BF16, AMX) OpenVINO runs an fp32 model
in bf16 unless told otherwise, so ``fp32`` sets ``INFERENCE_PRECISION_HINT=f32``. ``int8`` runs the quantized
IR; its operations NNCF left in float (see ``deploy/quantize.py``) run in :data:`INT8_FLOAT_PRECISION`.

``openvino`` is imported only when a predictor is built: the library does not load it otherwise.
"""

import contextlib
import os
import sys
import tempfile

import numpy as np

from ...runtime import native_stdout_to_stderr
from ...common.cpu_features import available_cores
from ...common.errors import first_line
from ..errors import PredictError
from ..model_files import check_program_file
from .base import Predictor

MODEL_EXTENSIONS = (".pdmodel", ".json", ".onnx", ".xml")
INT8_SUFFIX = ".int8.xml"  # <model_name>.int8.xml + .bin next to the fp32 model
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}
# The float parts of the int8 model (softmax, LayerNorm, GELU, the head, ...) stay in fp32: they are the
# accuracy-sensitive ones, and fp32 there keeps the int8 model's error to the quantized matmuls alone.
INT8_FLOAT_PRECISION = "f32"


def import_openvino():
    """The ``openvino`` module, or a one-line PredictError saying how to install it."""
    try:
        import openvino
    except ImportError:
        raise PredictError("--backend openvino needs OpenVINO: pip install openvino") from None
    return openvino


def model_stem(model_file):
    """``dir/TimeSformer.pdmodel`` (or ``.json``, ``.onnx``, ``.xml``, ``.int8.xml``) -> ``dir/TimeSformer``."""
    if model_file.endswith(INT8_SUFFIX):
        return model_file[: -len(INT8_SUFFIX)]
    base, ext = os.path.splitext(model_file)
    return base if ext in MODEL_EXTENSIONS else model_file


def int8_model_path(model_file):
    """Where ``tools/quantize.py`` writes the int8 model of ``model_file``: ``<stem>.int8.xml``."""
    return model_stem(model_file) + INT8_SUFFIX


def existing_int8_model(model_file):
    """The int8 model ``tools/quantize.py`` wrote for ``model_file`` (:func:`int8_model_path`); PredictError naming
    the command that makes it when there is none."""
    int8_file = int8_model_path(model_file)
    if not os.path.isfile(int8_file):
        raise PredictError(f"no int8 model '{int8_file}' for '{model_file}'; make it with tools/quantize.py "
                           f"-c CONFIG --model_file {model_file} --calib_list LIST")
    return int8_file


def read_model(core, model_file, params_file=None):
    """``model_file`` as an ``openvino.Model`` (see the module docstring for the formats).

    Raises:
        PredictError: missing file, unknown extension, or a file OpenVINO cannot parse (one line).
    """
    if not model_file or not os.path.isfile(model_file):
        raise PredictError(f"model file '{model_file}' not found")
    ext = os.path.splitext(model_file)[1]
    if ext not in MODEL_EXTENSIONS:
        raise PredictError(f"model file '{model_file}' is not a model OpenVINO reads; pass the exported "
                           f"{', '.join(MODEL_EXTENSIONS)}")
    from ..model_files import check_model_file

    check_model_file(model_file)  # data files outside the folder, XML entities: refused before OpenVINO parses
    try:
        if ext == ".json":
            return _read_pir_json(core, model_file, params_file)
        if ext == ".pdmodel":
            check_program_file(model_file)  # a corrupt program can crash a parser: reject it first
            if params_file:
                return core.read_model(model_file, params_file)
        return core.read_model(model_file)
    except PredictError:
        raise
    except Exception as err:  # OpenVINO raises RuntimeError / GeneralFailure with multi-line texts
        raise PredictError(f"cannot load model '{model_file}' with OpenVINO: {first_line(err)}") from None


def _read_pir_json(core, model_file, params_file):
    check_program_file(model_file)
    params_file = params_file or os.path.splitext(model_file)[0] + ".pdiparams"
    if not os.path.isfile(params_file):
        raise PredictError(f"params file '{params_file}' not found")
    try:
        import paddle2onnx
    except ImportError:
        raise PredictError(f"OpenVINO cannot read the PIR '{model_file}' and paddle2onnx (which converts it) is "
                           "missing: pip install paddle2onnx, or pass the .pdmodel / .onnx export") from None
    from ..export import DEFAULT_OPSET

    with tempfile.TemporaryDirectory(prefix="pir_to_onnx_") as tmp:
        onnx_file = os.path.join(tmp, "model.onnx")
        # paddle2onnx logs to stdout, which carries the predictions: send its lines to stderr.
        with native_stdout_to_stderr(), contextlib.redirect_stdout(sys.stderr):
            paddle2onnx.export(model_file, params_file, onnx_file, opset_version=DEFAULT_OPSET)
        model = core.read_model(onnx_file)
        # Weights are read into memory by read_model: the temporary file may go.
        return model


class OpenVINOPredictor(Predictor):
    """OpenVINO CPU inference: ``__call__(imgs [N, 3, V*T, H, W] float32) -> logits [N, num_classes]``.

    Args:
        model_file: the exported ``.pdmodel`` / ``.json`` / ``.onnx`` or an OpenVINO ``.xml``.
        precision: ``fp32``, ``bf16`` (the caller checked the CPU has it, see ``cpu_features.has_bf16``)
            or ``int8`` (runs ``<stem>.int8.xml`` from ``tools/quantize.py`` unless ``model_file`` is an ``.xml``).
        cpu_threads: inference threads (default: all cores available to the process).
        params_file: the ``.pdiparams`` when it is not next to the model file.
    """

    backend = "openvino"

    def __init__(self, model_file, precision="fp32", cpu_threads=None, params_file=None):
        if precision not in ("fp32", "bf16", "int8"):
            raise PredictError(f"--backend openvino has no precision '{precision}'; use fp32, bf16 or int8")
        ov = import_openvino()
        if precision == "int8" and not model_file.endswith(".xml"):
            model_file, params_file = existing_int8_model(model_file), None
        super().__init__(model_file, precision)
        core = ov.Core()
        model = read_model(core, model_file, params_file)
        self.compiled = compile_model(core, model, precision, cpu_threads)
        self.request = self.compiled.create_infer_request()

    def run(self, imgs):
        result = self.request.infer({0: imgs})
        return np.array(result[self.compiled.output(0)], np.float32)


def compile_model(core, model, precision, cpu_threads=None):
    """``model`` compiled for the CPU with the precision hint of ``precision`` and ``cpu_threads`` threads."""
    hint = INT8_FLOAT_PRECISION if precision == "int8" else OV_PRECISION[precision]
    config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": int(cpu_threads or available_cores()),
              "PERFORMANCE_HINT": "LATENCY"}
    try:
        return core.compile_model(model, "CPU", config)
    except Exception as err:
        raise PredictError(f"OpenVINO cannot compile the model for the CPU in {precision}: {first_line(err)}") from None
