"""Predict video classes with an exported model: Paddle Inference, ONNX Runtime or OpenVINO backends.

Library side of ``tools/predict.py``: finding the videos, the predictor backends, batching, softmax
and top-k. Preprocessing is the config's test pipeline (``build_pipeline(cfg.PIPELINE.test)``), the
same code path as ``main.py --test``.

Paddle Inference on CPU (Paddle 3.3.1, checked by ``tests/test_deploy_predict.py``): IR optimisation
and oneDNN build and run together once ``operator_reshape_onednn_fuse_pass`` is deleted (predictor
creation fails with it on some models); ``enable_memory_optim`` works for ``.pdmodel`` but fails to
build a predictor from the PIR ``.json``, so it is only used for ``.pdmodel``.
"""

import contextlib
import json
import os
import sys

import numpy as np

from ..utils.cpu_features import available_cores
from ..utils.errors import UserError
from ..utils.logger import get_logger

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
BACKENDS = ("paddle", "onnxruntime", "openvino")  # openvino: tasks/openvino_backend.py (fp32, bf16, int8 on CPU)
# Config keys that may name the class-name list (``id name`` per line), first found wins.
LABEL_FILE_KEYS = (("INFERENCE", "label_file"), ("label_file",), ("DATASET", "label_file"))
ONEDNN_BROKEN_PASS = "operator_reshape_onednn_fuse_pass"


class PredictError(UserError, RuntimeError):
    """A file cannot be predicted (missing, not a video, unreadable model); one line naming the file."""


def first_line(err):
    """A one-line summary of an exception, skipping Paddle's C++ traceback banners."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    skip = ("C++ Traceback", "-----", "Error Message Summary", "[Hint", "[operator")
    useful = [line for line in lines if not line.startswith(skip) and not line[:1].isdigit()]
    for line in useful:
        if "Error" in line or line.startswith("("):
            return line[:300]
    return (useful or lines or [type(err).__name__])[0][:300]


def list_videos(input_path):
    """``input_path`` (a file, or a folder scanned non-recursively for :data:`VIDEO_EXTENSIONS`) -> sorted paths.

    Raises:
        PredictError: the path does not exist, or the folder holds no video.
    """
    if os.path.isfile(input_path):
        return [input_path]
    if not os.path.isdir(input_path):
        raise PredictError(f"input '{input_path}' not found; pass a video file or a folder of videos")
    videos = sorted(os.path.join(input_path, name) for name in os.listdir(input_path)
                    if name.lower().endswith(VIDEO_EXTENSIONS) and os.path.isfile(os.path.join(input_path, name)))
    if not videos:
        raise PredictError(f"folder '{input_path}' has no video ({', '.join(VIDEO_EXTENSIONS)})")
    return videos


def config_label_file(cfg):
    """The label list the config names (see :data:`LABEL_FILE_KEYS`), or None."""
    for keys in LABEL_FILE_KEYS:
        node = cfg
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            return node
    return None


def read_label_names(cfg, label_file=None, instead="class ids are shown"):
    """``{id: name}`` for output, or None (class ids): from ``label_file`` when the user gave one (unreadable:
    :class:`PredictError`), else from the list the config names (unreadable: a warning saying what is done
    ``instead``, and None)."""
    path = label_file or config_label_file(cfg)
    if not path:
        return None
    try:
        return load_label_names(path)
    except PredictError as err:
        if label_file:
            raise
        get_logger().warning("%s (named by the config); %s", err, instead)
        return None


def load_label_names(path):
    """``id name`` per line (Kinetics-400 label list, UCF-101 ``classInd.txt``) -> ``{id: name}``.

    A line without a leading number gets its 0-based line index as id.
    """
    if not os.path.isfile(path):
        raise PredictError(f"label file '{path}' not found; pass an existing list with --label_file")
    names = {}
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(line.strip() for line in f):
            if not line:
                continue
            head, _, rest = line.partition(" ")
            if head.isdigit() and rest.strip():
                names[int(head)] = rest.strip()
            else:
                names[index] = line
    if not names:
        raise PredictError(f"label file '{path}' is empty")
    return names


def softmax(logits):
    """Row-wise softmax of ``[N, C]`` logits (float64 internally for stability)."""
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def top_k(probs, k):
    """``[C]`` probabilities -> (ids, scores) of the ``k`` largest, best first."""
    k = max(1, min(int(k), probs.shape[-1]))
    ids = np.argsort(-probs, kind="stable")[:k]
    return [int(i) for i in ids], [float(probs[i]) for i in ids]


def resolve_cpu_precision(backend, precision, flags=None):
    """The precision a CPU run computes for ``--backend``/``--precision``, and a note for the user (or None).

    ``fp16`` on a CPU means bf16, as in PaddleVideo's predictor. bf16 needs bf16 hardware
    (:func:`~paddlevideo.utils.cpu_features.has_bf16`); without it the run is fp32 and the note says so
    (an emulated bf16 would be slower than fp32). Only OpenVINO has CPU bf16 and int8 here.

    Raises:
        PredictError: ``paddle`` or ``onnxruntime`` asked for bf16 / int8 (one line saying what works).
    """
    from ..utils.cpu_features import cpu_flags, has_bf16

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


# --- backends -----------------------------------------------------------------------------------


def _check_file(path, what):
    if not path:
        raise PredictError(f"no {what} given")
    if not os.path.isfile(path):
        raise PredictError(f"{what} '{path}' not found")


def _check_program_file(model_file):
    """Reject an unreadable model file before Paddle parses it (a corrupt ``.pdmodel`` can crash the process)."""
    if model_file.endswith(".json"):
        try:
            with open(model_file, encoding="utf-8") as f:
                json.load(f)
        except (ValueError, UnicodeDecodeError) as err:
            raise PredictError(f"model file '{model_file}' is not a Paddle PIR program ({first_line(err)}); "
                               "re-export it with tools/export_model.py") from None
        return
    from paddle.base.proto import framework_pb2

    desc = framework_pb2.ProgramDesc()
    try:
        with open(model_file, "rb") as f:
            desc.ParseFromString(f.read())
    except Exception as err:  # protobuf's DecodeError, or any truncation error
        raise PredictError(f"model file '{model_file}' is not a Paddle program ({first_line(err)}); "
                           "re-export it with tools/export_model.py") from None
    if not desc.blocks or not desc.blocks[0].ops:
        raise PredictError(f"model file '{model_file}' holds no operators; re-export it with tools/export_model.py")


def cuda_available():
    """Whether this Paddle build can use a GPU."""
    import paddle

    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def paddle_inference_config(model_file, params_file, use_gpu=False, use_tensorrt=False, precision="fp32",
                            enable_mkldnn=True, cpu_threads=None, ir_optim=True, gpu_mem=8000,
                            disable_glog=True, batch_size=1):
    """A ``paddle.inference.Config`` for the exported model.

    Args:
        model_file: ``.pdmodel`` or PIR ``.json``; params_file: its ``.pdiparams``.
        use_gpu: GPU 0 with ``gpu_mem`` MB initial pool (caller checks availability).
        use_tensorrt, precision: TensorRT subgraphs in fp32 / fp16 / int8 (GPU only).
        enable_mkldnn: oneDNN kernels on CPU (the fast path).
        cpu_threads: math-library threads on CPU (None: all cores).
        ir_optim: graph optimisation passes (operator fusion).
        disable_glog: silence Paddle's C++ info logs.
        batch_size: the largest batch (TensorRT's max batch).
    """
    from paddle import inference

    config = inference.Config(model_file, params_file)
    config.switch_ir_optim(bool(ir_optim))
    if use_gpu:
        config.enable_use_gpu(int(gpu_mem), 0)
        if use_tensorrt:
            precision_type = {"fp32": inference.PrecisionType.Float32, "fp16": inference.PrecisionType.Half,
                              "int8": inference.PrecisionType.Int8}[precision]
            config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=int(batch_size),
                                          min_subgraph_size=3, precision_mode=precision_type,
                                          use_static=False, use_calib_mode=precision == "int8")
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(int(cpu_threads or available_cores()))
        if enable_mkldnn:
            config.enable_mkldnn()
            config.delete_pass(ONEDNN_BROKEN_PASS)
        else:
            config.disable_mkldnn()  # Paddle 3.x turns oneDNN on by default on CPU
    if not model_file.endswith(".json"):
        config.enable_memory_optim()
    if disable_glog:
        config.disable_glog_info()
    return config


@contextlib.contextmanager
def _native_stdout_to_stderr():
    """Send C++ writes to file descriptor 1 to stderr meanwhile: Paddle 3.3's oneDNN kernel choice
    prints debug lines (``ReduceMeanCheckIfOneDNNSupport``) to stdout, which carries the predictions."""
    try:
        stdout_fd, stderr_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # streams without descriptors (some notebooks)
        yield
        return
    sys.stdout.flush()
    saved = os.dup(stdout_fd)
    try:
        os.dup2(stderr_fd, stdout_fd)
        yield
    finally:
        _flush_c_stdio()  # C/C++ lines still buffered belong to stderr too
        os.dup2(saved, stdout_fd)
        os.close(saved)


def _flush_c_stdio():
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library handle (not POSIX)
        pass


class PaddlePredictor:
    """Paddle Inference on an exported model: ``__call__(imgs [N, 3, T, H, W] float32) -> logits [N, C]``."""

    def __init__(self, model_file, params_file=None, **settings):
        from paddle import inference

        params_file = params_file or os.path.splitext(model_file)[0] + ".pdiparams"
        _check_file(model_file, "model file")
        _check_file(params_file, "params file")
        _check_program_file(model_file)
        try:
            self.predictor = inference.create_predictor(paddle_inference_config(model_file, params_file, **settings))
        except Exception as err:  # Paddle raises RuntimeError / ValueError with C++ tracebacks
            raise PredictError(f"cannot load model '{model_file}' with params '{params_file}': "
                               f"{first_line(err)}") from None
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def __call__(self, imgs):
        imgs = np.ascontiguousarray(imgs, np.float32)
        self.input.reshape(list(imgs.shape))
        self.input.copy_from_cpu(imgs)
        with _native_stdout_to_stderr():
            self.predictor.run()
        return self.output.copy_to_cpu()


class OnnxPredictor:
    """ONNX Runtime on an exported ``.onnx``: ``__call__(imgs [N, 3, T, H, W] float32) -> logits [N, C]``."""

    def __init__(self, onnx_file, use_gpu=False, cpu_threads=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise PredictError("--backend onnxruntime needs onnxruntime: pip install onnxruntime") from None
        _check_file(onnx_file, "ONNX file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(cpu_threads or available_cores())
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: keep stdout/stderr for predictions
        providers = ["CPUExecutionProvider"]
        if use_gpu:
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            else:
                get_logger().warning("onnxruntime has no CUDA provider (install onnxruntime-gpu); running on CPU")
        try:
            self.session = ort.InferenceSession(onnx_file, options, providers=providers)
        except Exception as err:  # onnxruntime's InvalidProtobuf, Fail, ...
            raise PredictError(f"cannot load ONNX model '{onnx_file}': {first_line(err)}") from None
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, imgs):
        return self.session.run(None, {self.input_name: np.ascontiguousarray(imgs, np.float32)})[0]


# --- prediction loop -----------------------------------------------------------------------------


def _batches(items, size):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_videos(files, pipeline, predictor, batch_size=1, k=1, label_names=None, timer=None, probabilities=False):
    """Run ``pipeline`` + ``predictor`` on each file; yields one result dict per file, in order.

    A result is ``{'file', 'class_ids', 'class_names', 'scores'}`` (top-``k`` softmax probabilities,
    best first; names None without a label list; ``probabilities``: the model already outputs probabilities,
    as with ``avg_type: prob``, and they are taken as they are instead of going through softmax again) or ``{'file', 'error'}`` (a one-line message naming
    the file) when the video cannot be decoded or the model rejects it. ``files`` may be a progress bar.
    ``timer``, if given, is a dict that accumulates seconds under ``preprocess`` / ``inference`` /
    ``postprocess``.
    """
    import time

    timer = timer if timer is not None else {}
    for batch in _batches(files, max(1, int(batch_size))):
        start = time.perf_counter()
        clips, results = [], []
        for path in batch:
            try:
                clips.append(pipeline({"filename": path})["imgs"])
                results.append({"file": path})
            except Exception as err:  # decoders raise VideoOpenError / VideoDecodeError naming the file
                message = first_line(err)
                if path not in message:
                    message = f"{path}: {message}"
                results.append({"file": path, "error": message})
        ok = [r for r in results if "error" not in r]
        timer["preprocess"] = timer.get("preprocess", 0.0) + time.perf_counter() - start
        if ok:
            start = time.perf_counter()
            try:
                logits = predictor(np.stack(clips))
            except Exception as err:  # e.g. input shape of another config
                for result in ok:
                    result["error"] = f"{result['file']}: the model rejected the clip ({first_line(err)})"
                logits = None
            timer["inference"] = timer.get("inference", 0.0) + time.perf_counter() - start
            if logits is not None:
                start = time.perf_counter()
                for result, probs in zip(ok, np.asarray(logits, np.float64) if probabilities else softmax(logits)):
                    ids, scores = top_k(probs, k)
                    result["class_ids"] = ids
                    result["class_names"] = [label_names.get(i, str(i)) for i in ids] if label_names else None
                    result["scores"] = scores
                timer["postprocess"] = timer.get("postprocess", 0.0) + time.perf_counter() - start
        yield from results


def format_text(result):
    """PaddleVideo's lines: ``Current video file: <path>``, ``\\ttop-1 class: <id>``, ``\\ttop-1 score: <p>``,
    plus ``\\ttop-1 class name: <name>`` with a label list. For k > 1 the values are lists."""
    k = len(result["class_ids"])
    ids = result["class_ids"][0] if k == 1 else result["class_ids"]
    scores = result["scores"][0] if k == 1 else result["scores"]
    lines = [f"Current video file: {result['file']}", f"\ttop-{k} class: {ids}", f"\ttop-{k} score: {scores}"]
    if result.get("class_names"):
        names = result["class_names"][0] if k == 1 else result["class_names"]
        lines.append(f"\ttop-{k} class name: {names}")
    return "\n".join(lines)


def format_json(result):
    """One JSON object per line: ``file``, ``class_ids``, ``class_names``, ``scores`` (or ``error``)."""
    return json.dumps(result, ensure_ascii=False)
