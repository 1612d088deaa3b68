"""ONNX Runtime on an exported ``.onnx`` (``--backend onnxruntime``)."""

from ...common.cpu_features import available_cores
from ...common.errors import first_line
from ...common.logger import get_logger
from ..errors import PredictError
from ..model_files import check_file
from .base import Predictor


class OnnxPredictor(Predictor):
    """ONNX Runtime on an exported ``.onnx`` (CUDA provider with ``use_gpu`` when installed)."""

    backend = "onnxruntime"

    def __init__(self, onnx_file, use_gpu=False, cpu_threads=None):
        super().__init__(onnx_file, "fp32")
        try:
            import onnxruntime as ort
        except ImportError:
            raise PredictError("--backend onnxruntime needs onnxruntime: pip install onnxruntime") from None
        check_file(onnx_file, "ONNX file")
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

    def run(self, imgs):
        return self.session.run(None, {self.input_name: imgs})[0]
