"""Inference runtimes behind :class:`.base.Predictor`: Paddle Inference, ONNX Runtime, OpenVINO.

Each module imports its runtime only when a predictor is built; :func:`paddlevideo.deploy.predictor.build_predictor`
chooses one.
"""
