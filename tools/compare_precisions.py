#!/usr/bin/env python
"""How far bf16 and int8 inference move the CLS feature, next to how far fp32 is from float64.

For each clip (the config's test pipeline, every view) the CLS feature (the head's input, after the final
LayerNorm) is computed by: the dygraph model in float64 (reference), the dygraph model in fp32, and the
exported model on OpenVINO in fp32, bf16 and int8 (NNCF, calibrated on the same clips). Prints the cosine
similarity of each to the OpenVINO fp32 feature and to float64 (minimum and mean over views).

Example (random ViT-B on your own clips, e.g. PaddleVideo's ``data/example.avi``; docs/benchmarks.md)::

    python tools/compare_precisions.py -c configs/recognition/timesformer/timesformer_k400_videos.yaml \\
        --clips data/example.avi other_clip.mp4 --work_dir /tmp/precisions

Without ``-w`` the weights are random (seed 0), with non-zero temporal weights so that the temporal
attention path counts (a fresh model zeroes ``temporal_fc``).
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("compare_precisions.py", __name__)
import argparse  # noqa: E402

from paddlevideo.cli import add_debug_flag, add_trust_pickle_flag, run  # noqa: E402

PROG = "compare_precisions.py"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True, help="model config (its PIPELINE.test makes the clips)")
    parser.add_argument("-w", "--weights", default=None, help="full checkpoint .pdparams (default: random, seed 0)")
    parser.add_argument("--clips", nargs="+", required=True, help="video files, or folders of videos")
    parser.add_argument("--work_dir", required=True, help="folder for the weights, export and int8 model")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    add_trust_pickle_flag(parser, "the -w weights")
    add_debug_flag(parser)
    return parser.parse_args(argv)


def random_weights(cfg, path, seed=0):
    import numpy as np
    import paddle

    from paddlevideo.modeling.builder import build_model

    paddle.seed(seed)
    state = build_model(cfg.MODEL).state_dict()
    rng = np.random.RandomState(seed)
    for key, value in state.items():
        if "temporal_fc" in key:
            state[key] = paddle.to_tensor(rng.normal(0, 0.02, value.shape).astype("float32"))
    paddle.save(state, path)
    return path


def dygraph_features(cfg, weights, clips, dtype, trust_pickle=False):
    """CLS features ``[K*V, D]`` (clip-major, then view) of the dygraph model in ``dtype``."""
    import numpy as np
    import paddle

    from paddlevideo.modeling.builder import build_model_with_weights

    model_cfg = cfg.MODEL
    if dtype == "float64":  # Paddle's own kernels (the fused CPU kernels are fp32 only)
        model_cfg = dict(model_cfg, backbone=dict(model_cfg.backbone, kernels="paddle", attention_impl="plain"))
    model = build_model_with_weights(model_cfg, weights, trust_pickle=trust_pickle)
    model.eval()
    if dtype == "float64":
        model.to(dtype="float64")
    out = []
    with paddle.no_grad():
        for clip in clips:
            views, _ = model._views(paddle.to_tensor(clip[None].astype(dtype)))
            out.append(model.backbone(views).numpy().astype(np.float64))
    return np.concatenate(out)


def openvino_features(model_file, clips, precision):
    """The head input ``[K*V, D]`` of the exported model on OpenVINO (the int8 model's head stays float)."""
    import numpy as np
    import openvino as ov

    from paddlevideo.deploy.backends.openvino_runtime import compile_model, int8_model_path
    from paddlevideo.deploy.quantize import head_matmuls

    core = ov.Core()
    model = core.read_model(int8_model_path(model_file) if precision == "int8" else model_file)
    (head,) = [op for op in model.get_ordered_ops() if op.get_friendly_name() in head_matmuls(model)]
    features = ov.Model([head.input_value(0)], model.get_parameters(), "cls_feature")
    compiled = compile_model(core, features, precision)
    return np.concatenate([np.asarray(compiled(clip[None])[0], np.float64).reshape(-1, head.input_value(0)
                                                                                    .get_partial_shape()[-1]
                                                                                    .get_length())
                           for clip in clips])


def cosine(a, b):
    import numpy as np

    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main(argv=None):
    args = parse_args(argv)
    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.deploy.export import export_model
    from paddlevideo.deploy.backends.openvino_runtime import import_openvino, int8_model_path, read_model
    from paddlevideo.deploy.provenance import companion_files
    from paddlevideo.deploy.quantize import quantize_ov_model, save_int8
    from paddlevideo.loader.video_files import list_videos
    from paddlevideo.config import get_config
    from paddlevideo.common.logger import setup_logger
    from paddlevideo.common.files import prepare_output_dir
    from paddlevideo.runtime import configure_cpu
    from paddlevideo.common.overwrite import refuse_overwriting_inputs
    from paddlevideo.common.cpu_features import has_bf16, isa_summary

    configure_cpu()
    setup_logger(level="WARNING")
    cfg = get_config(args.config, ["MODEL.backbone.pretrained="] + args.override, show=False)
    videos = [video for item in args.clips for video in list_videos(item)]
    prepare_output_dir(args.work_dir, "--work_dir")
    inputs = [("-c", args.config), ("-w", args.weights)] + [("--clips", video) for video in videos]
    if not args.weights:  # random weights are written there
        refuse_overwriting_inputs([("--work_dir", os.path.join(args.work_dir, "weights.pdparams"))], inputs)
    weights = args.weights or random_weights(cfg, os.path.join(args.work_dir, "weights.pdparams"))
    pipeline = build_pipeline(cfg.PIPELINE.test, "PIPELINE.test")
    clips = [pipeline({"filename": path})["imgs"] for path in videos]
    trust = args.trust_pickle and bool(args.weights)  # the random weights are this run's own file
    model_file = export_model(cfg, weights, os.path.join(args.work_dir, "export"), trust_pickle=trust,
                              inputs=inputs)["model"]
    ov = import_openvino()
    quantized, _ = quantize_ov_model(read_model(ov.Core(), model_file), [c[None] for c in clips], len(clips))
    save_int8(ov, quantized, int8_model_path(model_file), companion_files(model_file))

    reference = dygraph_features(cfg, weights, clips, "float64", trust)
    rows = {"dygraph fp32": dygraph_features(cfg, weights, clips, "float32", trust)}
    for precision in ("fp32", "bf16", "int8"):
        if precision == "bf16" and not has_bf16():
            print("bf16: this CPU has no bf16; skipped")
            continue
        rows[f"openvino {precision}"] = openvino_features(model_file, clips, precision)
    base = rows["openvino fp32"]
    print(isa_summary())
    print(f"{len(videos)} clips x {reference.shape[0] // len(videos)} views; CLS feature cosine similarity "
          "(min and mean over views, and 1 - min)")
    print(f"{'features':<16} {'vs float64 min':>15} {'mean':>11} {'1-min':>8}   {'vs ov fp32 min':>15} {'mean':>11} "
          f"{'1-min':>8}")
    for name, feats in rows.items():
        to64, to32 = cosine(feats, reference), cosine(feats, base)
        print(f"{name:<16} {to64.min():>15.9f} {to64.mean():>11.9f} {1 - to64.min():>8.1e}   {to32.min():>15.9f} "
              f"{to32.mean():>11.9f} {1 - to32.min():>8.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
