"""The contenders of ``tools/benchmark.py``: one :func:`register` call each, in the order of the table.

Options (``register(..., **options)``, passed to the runner as ``spec['options']``):

- ``overrides``: config overrides for this contender (``-o`` of the command line comes first);
- ``default_env``: no CPU set-up in the worker (no AMD MKL variable, no malloc tuning, Paddle's strided views
  on: ``PADDLEVIDEO_CONFIGURE_CPU=0``); with :data:`STRAIGHTFORWARD` (Paddle's own Linear, LayerNorm, GELU and
  softmax, a full last block, plain attention) it is a straightforward Paddle implementation: the reference row;
- ``library``: the worker does not call ``configure_cpu()`` itself, as a user's script that only imports
  paddlevideo and calls ``build_model`` (which applies the set-up to the first model); to compare with
  ``dygraph`` (main.py's);
- ``env``: extra environment variables of the worker;
- ``precision``: ``fp32`` (default), ``bf16`` or ``int8``; ``project=False``: not one of the project's code
  paths (another library, a ceiling), so never "the fastest fp32 path" the low-precision rows are compared with;
- anything else is the runner's own (``backend``, ``onednn``, ``format``, ...).
"""

from collections import namedtuple

from .dygraph import DygraphRunner
from .exported import ExportedRunner
from .hf_torch import HFTorchRunner
from .openvino import OpenVINORunner
from .peak import MatmulsRunner

INFER, TRAIN = "infer", "train"
MODEL_MODES = (INFER, TRAIN)

PLAIN = ["MODEL.backbone.attention_impl=plain"]
PADDLE_OPS = ["MODEL.backbone.kernels=paddle"]
STRAIGHTFORWARD = PLAIN + PADDLE_OPS + ["MODEL.backbone.cls_only_last_block=False"]

Contender = namedtuple("Contender", "name runner modes ref options")
CONTENDERS = {}


def register(name, runner, modes=(INFER,), ref=False, **options):
    """Add contender ``name``: ``runner`` (a :class:`~.common.Runner` subclass) with ``options``, in ``modes``
    (``infer``, ``train``); ``ref=True`` makes it the row the others' speed-ups are measured against."""
    if name in CONTENDERS or name == "sgemm":
        raise ValueError(f"contender {name!r} is registered twice")
    unknown = [mode for mode in modes if mode not in MODEL_MODES]
    if unknown:
        raise ValueError(f"contender {name!r}: unknown mode(s) {unknown}; use {MODEL_MODES}")
    CONTENDERS[name] = Contender(name, runner, tuple(modes), ref, dict(options))
    return CONTENDERS[name]


def contenders_for(mode):
    """``{name: Contender}`` of ``mode``, in the table's order."""
    return {name: entry for name, entry in CONTENDERS.items() if mode in entry.modes}


def select(mode, wanted):
    """The contenders of ``mode`` named in ``wanted`` (all when None), in the table's order."""
    table = contenders_for(mode)
    if wanted:
        unknown = [n for n in wanted if n not in table]
        if unknown:
            raise SystemExit(f"unknown contender(s) {', '.join(unknown)}; choose from {', '.join(table)}")
    return [entry for name, entry in table.items() if not wanted or name in wanted]


BOTH = (INFER, TRAIN)
register("dygraph_default_env", DygraphRunner, BOTH, ref=True, overrides=STRAIGHTFORWARD, default_env=True)
register("dygraph_plain", DygraphRunner, BOTH, overrides=PLAIN)
register("dygraph", DygraphRunner, BOTH)
register("dygraph_recompute", DygraphRunner, (TRAIN,), overrides=["MODEL.backbone.recompute=True"])
register("dygraph_library", DygraphRunner, BOTH, library=True)
# A/B of the project's CPU paths (paddlevideo/modeling/layers/fast_ops.py): Paddle's ops instead.
register("dygraph_paddle_kernels", DygraphRunner, BOTH, overrides=PADDLE_OPS)
register("paddle_inference", ExportedRunner, backend="paddle_inference", onednn=True)  # tools/predict.py's default
register("paddle_inference_pir", ExportedRunner, backend="paddle_inference", onednn=True, format="pir")
register("paddle_inference_mkl", ExportedRunner, backend="paddle_inference", onednn=False)
register("onnxruntime", ExportedRunner, backend="onnxruntime")
register("openvino_fp32", OpenVINORunner, precision="fp32")
register("openvino_bf16", OpenVINORunner, precision="bf16")
register("openvino_int8", OpenVINORunner, precision="int8")
register("hf_torch", HFTorchRunner, BOTH, project=False)
# Not a model: only its matrix products (a ceiling, see MatmulsRunner).
register("matmuls_only", MatmulsRunner, project=False)
