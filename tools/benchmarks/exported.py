"""The exported model through ``tools/predict.py``'s predictors: Paddle Inference (oneDNN on or off, ``.pdmodel``
or PIR) and ONNX Runtime (CPU provider); and the export itself, done once per benchmark run."""

import os

from .common import Runner, inputs, load_cfg, one_line, views_work


def export_for_benchmark(cfg, spec):
    """The exports users get (``tools/export_model.py``: plain attention, one feed), for ``views`` views:
    ``.pdmodel`` (the default) and the PIR ``.json`` with its ONNX conversion. Returns their paths."""
    from paddlevideo.deploy.export import export_model

    # The benchmark's input is the backbone's own clip (overrides may change it), whatever INFERENCE says.
    backbone = cfg.MODEL.backbone
    cfg.INFERENCE = dict(cfg.get("INFERENCE") or {}, num_seg=backbone.num_seg, target_size=backbone.img_size)
    folder = {fmt: os.path.join(spec["workdir"], fmt) for fmt in ("pdmodel", "pir")}
    result = {"pdmodel": export_model(cfg, spec["weights"], folder["pdmodel"], num_views=spec["views"])["model"]}
    try:
        written = export_model(cfg, spec["weights"], folder["pir"], fmt="pir", onnx=True, num_views=spec["views"])
        result["onnx"] = written["onnx"]
    except Exception as exc:  # an ONNX conversion problem must not hide the Paddle exports
        result["onnx_error"] = one_line(exc)
        written = export_model(cfg, spec["weights"], folder["pir"], fmt="pir", num_views=spec["views"])
    result["pir"] = written["model"]
    return result


class ExportedRunner(Runner):
    """``options['backend']``: ``paddle_inference`` (``onednn``: on/off; ``format``: ``pdmodel`` | ``pir``) or
    ``onnxruntime``; the predictor is fed the benchmark's clips ``[B, 3, V*T, H, W]`` as ``tools/predict.py``
    feeds it."""

    needs_export = True

    @classmethod
    def unavailable(cls, spec):
        if spec["options"]["backend"] == "onnxruntime" and not spec["exported"].get("onnx"):
            return "no ONNX model"
        return super().unavailable(spec)

    def __init__(self, spec):
        from paddlevideo.deploy.backends.onnx_runtime import OnnxPredictor
        from paddlevideo.deploy.backends.paddle_inference import PaddlePredictor

        cfg = load_cfg(spec)
        options, exported = spec["options"], spec["exported"]
        if options["backend"] == "onnxruntime":
            self.predictor = OnnxPredictor(exported["onnx"], cpu_threads=spec["threads"])
        else:
            model_file = exported["pir" if options.get("format") == "pir" else "pdmodel"]
            self.predictor = PaddlePredictor(model_file, enable_mkldnn=bool(options.get("onednn")),
                                             cpu_threads=spec["threads"])
        self.x, _ = inputs(spec, cfg)
        self.frames_per_clip = cfg.MODEL.backbone.num_seg  # the export's views are this long (export above)

    def run(self):
        return self.predictor(self.x)

    output = run

    def work(self):
        """The clips fed; that the graph scores all their views is checked by its scores (``max|diff|`` to the
        reference row, which averages the same views)."""
        return views_work(self.x.shape, self.frames_per_clip, train=False)
