"""Paddle 3.3.1 (CPU): Paddle Inference with IR optimisation and oneDNN both on fails to build a predictor.

Bug: ``operator_reshape_onednn_fuse_pass`` raises while the predictor is created for this model (and for the
tiny test models), so ``enable_mkldnn()`` + ``switch_ir_optim(True)`` is unusable as Paddle sets it up.
Deleting that one pass keeps every other fusion and oneDNN's speed. Also: ``enable_memory_optim()`` makes
predictor creation fail for the PIR ``.json`` program (it works for ``.pdmodel``).
Reproduced by ``tests/test_deploy_predict.py::test_cpu_inference_settings_build_and_agree`` once
:func:`apply` is left out of ``paddlevideo/deploy/backends/paddle_inference.py``.
Delete this module when a Paddle Inference release builds the predictor with the pass and memory optimisation.
"""

BROKEN_PASS = "operator_reshape_onednn_fuse_pass"


def apply(config, model_file, onednn):
    """Adjust a ``paddle.inference.Config`` for ``model_file``: without :data:`BROKEN_PASS` when ``onednn`` is
    on; memory optimisation only for a ``.pdmodel``."""
    if onednn:
        config.delete_pass(BROKEN_PASS)
    if not model_file.endswith(".json"):
        config.enable_memory_optim()
    return config
