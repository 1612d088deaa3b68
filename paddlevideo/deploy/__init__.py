"""Deployment: export a trained model, run exported models (one :class:`~.backends.base.Predictor` interface
over Paddle Inference, ONNX Runtime and OpenVINO), int8 quantization, the model-input check, and prediction
(batching, top-k, output). Training and testing live in :mod:`paddlevideo.tasks`."""
