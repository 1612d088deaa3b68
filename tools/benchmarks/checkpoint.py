"""``--mode checkpoint`` (issue 23): reading the config's model weights with ``utils.save_load.load`` (the
restricted unpickler every tool uses) against ``paddle.load`` (what ``--trust-pickle`` uses)."""

import os
import statistics
import tempfile
import time

from paddlevideo.config import get_config


def run_checkpoint(args, logger):
    """Both loaders returning tensors, rounds interleaved, for ``paddle.save``'s default protocol 4 and the
    protocol 2 of older Paddle releases; prints and returns one row per protocol."""
    import paddle

    from paddlevideo.modeling.builder import build_model
    from paddlevideo.common.save_load import load

    cfg = get_config(str(args.config), ["MODEL.backbone.pretrained="] + args.override, show=False)
    paddle.seed(0)
    state = build_model(cfg.MODEL).state_dict()
    megabytes = sum(int(v.numel()) * v.element_size() for v in state.values()) / 2**20
    rows = []
    with tempfile.TemporaryDirectory(prefix="pv_ckpt_bench_") as folder:
        for protocol in (4, 2):
            path = os.path.join(folder, f"weights_p{protocol}.pdparams")
            paddle.save(state, path, protocol=protocol)
            times = {"safe_load": [], "paddle_load": []}
            for i in range(args.warmup + args.rounds):
                for name, trust in (("safe_load", False), ("paddle_load", True)):
                    start = time.perf_counter()
                    loaded = load(path, trust_pickle=trust)
                    elapsed = time.perf_counter() - start
                    del loaded
                    if i >= args.warmup:
                        times[name].append(1000 * elapsed)
            safe, ref = statistics.median(times["safe_load"]), statistics.median(times["paddle_load"])
            rows.append({"protocol": protocol, "megabytes": megabytes, "safe_load_ms": safe, "paddle_load_ms": ref,
                         "ratio": safe / ref,
                         "safe_load_times_ms": times["safe_load"], "paddle_load_times_ms": times["paddle_load"]})
    print(f"\n== checkpoint: {len(state)} tensors, {megabytes:.0f} MiB; median of {args.rounds} rounds")
    for row in rows:
        print(f"protocol {row['protocol']}: save_load.load {row['safe_load_ms']:.0f} ms, paddle.load "
              f"{row['paddle_load_ms']:.0f} ms, ratio {row['ratio']:.2f}")
    return rows
