"""The runners of ``tools/benchmark.py`` (the command line stays there), one module per family.

- :mod:`.common`: the runner protocol (:class:`~.common.Runner`), the deterministic input clip, the work record;
- :mod:`.peak`: the machine's sgemm peak and the model's matrix products alone (a ceiling); :mod:`.flops`: the analytic
  FLOP count the GFLOP/s figures divide by;
- :mod:`.dygraph`: the project's model in Paddle dygraph (inference or one training step);
- :mod:`.exported`: the exported model through ``tools/predict.py``'s Paddle Inference and ONNX Runtime predictors;
- :mod:`.openvino`: the ``.pdmodel`` export on OpenVINO in fp32, bf16 or int8 (and the int8 quantization);
- :mod:`.hf_torch`: Hugging Face transformers' TimeSformer in PyTorch;
- :mod:`.contenders`: the table of contenders, each one :func:`~.contenders.register` call;
- :mod:`.workers`: the worker processes and the parent's handle on each;
- :mod:`.model`: one interleaved run of the contenders of a mode; :mod:`.report`: the table, with its checks;
- :mod:`.profile`, :mod:`.loader`: ``--profile`` and ``--mode loader``.

Adding a contender: a :class:`~.common.Runner` subclass (built in its own worker process from the spec; ``run()``
one timed iteration; ``work()`` what that iteration computed, read from the inputs it really feeds) and one
``register(name, RunnerClass, modes=..., **options)`` line in :mod:`.contenders`. The benchmark compares every
runner's ``work()`` with the work the command asks for (clips x frames x size, inference or training) and
refuses a row that did other work, so a contender cannot look fast by doing less.

Modules import only light things at the top: workers start with ``spawn`` and import them again, and the parent
must not start an OpenMP runtime of its own (its spinning threads would steal cycles). Paddle, ONNX Runtime,
OpenVINO and torch are imported inside the runners.
"""
