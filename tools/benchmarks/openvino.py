"""The ``.pdmodel`` export on OpenVINO (``tools/predict.py --backend openvino``) in fp32, bf16 or int8; int8 is the
model ``tools/quantize.py`` would write, calibrated here on random clips (timing does not depend on the ranges)."""

from .common import Runner, inputs, load_cfg, one_line, views_work

CALIB_CLIPS = 4  # random calibration clips for int8


class OpenVINORunner(Runner):
    """``options['precision']``: fp32 | bf16 | int8. bf16 on a CPU without bf16 hardware is reported unavailable
    (predict.py would run fp32 instead)."""

    needs_export = True

    @staticmethod
    def precision(spec):
        return spec["options"]["precision"]

    @classmethod
    def preparation(cls, spec):
        if spec["options"]["precision"] == "int8" and spec["exported"].get("pdmodel"):
            return f"quantizing the export to int8 (NNCF, {CALIB_CLIPS} random clips)"
        return None

    @classmethod
    def prepare(cls, spec):
        """int8: write ``<model>.int8.xml`` next to the ``.pdmodel`` export (NNCF, as tools/quantize.py),
        calibrated on ``CALIB_CLIPS`` random clips."""
        try:
            import numpy as np
            import openvino as ov

            from paddlevideo.deploy.backends.openvino_runtime import int8_model_path
            from paddlevideo.deploy.provenance import companion_files
            from paddlevideo.deploy.quantize import quantize_ov_model, save_int8

            model_file = spec["exported"]["pdmodel"]
            shape = inputs(dict(spec, batch_size=1), load_cfg(spec))[0].shape
            clips = [np.random.RandomState(seed).standard_normal(shape).astype("float32")
                     for seed in range(CALIB_CLIPS)]
            quantized, _ = quantize_ov_model(ov.Core().read_model(model_file), clips, CALIB_CLIPS)
            save_int8(ov, quantized, int8_model_path(model_file), companion_files(model_file))
            return {"int8": int8_model_path(model_file)}
        except Exception as exc:
            return {"error": one_line(exc)}

    def __init__(self, spec):
        from paddlevideo.deploy.backends.openvino_runtime import OpenVINOPredictor
        from paddlevideo.deploy.predictor import resolve_cpu_precision

        precision, note = resolve_cpu_precision("openvino", spec["options"]["precision"])
        if precision != spec["options"]["precision"]:
            raise RuntimeError(note)
        cfg = load_cfg(spec)
        self.predictor = OpenVINOPredictor(spec["exported"]["pdmodel"], precision, cpu_threads=spec["threads"])
        self.x, _ = inputs(spec, cfg)
        self.frames_per_clip = cfg.MODEL.backbone.num_seg

    def run(self):
        return self.predictor(self.x)

    output = run

    def work(self):
        return views_work(self.x.shape, self.frames_per_clip, train=False)
