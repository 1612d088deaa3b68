"""An exported model (Paddle Inference, ONNX Runtime or OpenVINO) where the test loop expects the model:
``main.py --test --model_file ...`` scores ``DATASET.test`` with it through the same loop and metric."""

import numpy as np

EXPORTED_BACKENDS = ("paddle", "onnxruntime", "openvino")


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
    Inference and ONNX Runtime; ``paddle_settings`` are :func:`~.predict.paddle_inference_config`'s other
    options (TensorRT, oneDNN, IR optimisation, ...). An ``.onnx`` whose data files lie outside its folder
    or an ``.xml`` with a DOCTYPE is refused first (``utils.model_files``)."""
    from ..utils.model_files import check_model_file

    check_model_file(model_file)
    if backend == "openvino":
        from .openvino_backend import OpenVINOPredictor

        return OpenVINOPredictor(model_file, precision, cpu_threads=cpu_threads, params_file=params_file)
    if backend == "onnxruntime":
        from .predict import OnnxPredictor

        return OnnxPredictor(model_file, use_gpu=use_gpu, cpu_threads=cpu_threads)
    from .predict import PaddlePredictor

    return PaddlePredictor(model_file, params_file, use_gpu=use_gpu, precision=precision, cpu_threads=cpu_threads,
                           **paddle_settings)


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
