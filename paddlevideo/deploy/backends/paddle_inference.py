"""Paddle Inference on an exported ``.pdmodel`` / PIR ``.json`` (``--backend paddle``): IR optimisation and
oneDNN on the CPU, TensorRT on a GPU. Paddle 3.3's predictor-creation bugs: :mod:`paddlevideo.compat.onednn_reshape_fuse`.
"""

import os


from ...compat import onednn_reshape_fuse
from ...runtime import native_stdout_to_stderr
from ...common.cpu_features import available_cores
from ...common.errors import first_line
from ..errors import PredictError
from ..model_files import check_file, check_program_file
from .base import Predictor


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
        else:
            config.disable_mkldnn()  # Paddle 3.x turns oneDNN on by default on CPU
    onednn_reshape_fuse.apply(config, model_file, onednn=enable_mkldnn and not use_gpu)
    if disable_glog:
        config.disable_glog_info()
    return config


class PaddlePredictor(Predictor):
    """Paddle Inference on an exported ``.pdmodel`` / ``.json`` (+ ``.pdiparams``); ``settings`` are
    :func:`paddle_inference_config`'s."""

    backend = "paddle"

    def __init__(self, model_file, params_file=None, **settings):
        from paddle import inference

        super().__init__(model_file, settings.get("precision", "fp32"))

        params_file = params_file or os.path.splitext(model_file)[0] + ".pdiparams"
        check_file(model_file, "model file")
        check_file(params_file, "params file")
        check_program_file(model_file)
        try:
            self.predictor = inference.create_predictor(paddle_inference_config(model_file, params_file, **settings))
        except Exception as err:  # Paddle raises RuntimeError / ValueError with C++ tracebacks
            raise PredictError(f"cannot load model '{model_file}' with params '{params_file}': "
                               f"{first_line(err)}") from None
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def run(self, imgs):
        self.input.reshape(list(imgs.shape))
        self.input.copy_from_cpu(imgs)
        with native_stdout_to_stderr():
            self.predictor.run()
        return self.output.copy_to_cpu()
