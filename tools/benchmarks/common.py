"""What every runner shares: the runner protocol, the deterministic input clip and the work a run computes."""

import resource
import sys

from paddlevideo.config import get_config


def load_cfg(spec):
    """The config of a worker's spec (file + overrides)."""
    return get_config(spec["config"], spec["overrides"], show=False)


def inputs(spec, cfg):
    """Deterministic clips ``[B, 3, V*T, H, W]`` and labels ``[B, 1]`` (numpy), the same in every worker."""
    import numpy as np

    backbone = cfg.MODEL.backbone
    rng = np.random.RandomState(0)
    frames = backbone.num_seg * spec["views"]
    size = backbone.img_size
    imgs = rng.standard_normal((spec["batch_size"], 3, frames, size, size)).astype("float32")
    labels = rng.randint(0, cfg.MODEL.head.num_classes, size=(spec["batch_size"], 1)).astype("int64")
    return imgs, labels


def work(clips, frames, size, train):
    """What one timed iteration computes: ``clips`` clips of ``frames`` x ``size`` x ``size`` through the model,
    forward only or a training step. Runners build it from the tensors they really feed (not from the spec)."""
    return {"clips": int(clips), "frames": int(frames), "size": int(size), "train": bool(train)}


def views_work(shape, frames_per_clip, train):
    """The work of a recognizer input ``[B, C, V*T, H, W]`` split into views of ``frames_per_clip`` frames."""
    batch, _, frames, height, width = shape
    if height != width:
        raise ValueError(f"input frames are {height}x{width}, not square")
    return work(batch * (frames // frames_per_clip), frames_per_clip, width, train)


def expected_work(cfg, batch_size, views, train):
    """The work the command asks every contender for."""
    backbone = cfg.MODEL.backbone
    return work(batch_size * views, backbone.num_seg, backbone.img_size, train)


def rss_mb():
    """(current RSS, peak RSS) of this process in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    current_mb = peak_mb
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    current_mb = int(line.split()[1]) / 1024
    except OSError:
        pass
    return current_mb, peak_mb


def one_line(exc, limit=300):
    """``Type: first line`` of an exception, for a table cell."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:limit]


class Runner:
    """One contender, built in its own worker process from ``spec`` (config, overrides, mode, batch_size,
    views, threads, options, weights, exported); the parent never builds one.

    Subclasses implement ``run()`` (one timed iteration) and ``work()`` (what one iteration computes, see
    :func:`work`); ``output()`` returns the scores ``[B, num_classes]`` for the comparison with the reference
    row, or None when they cannot be compared (other weights, not a model).
    """

    needs_export = False  # the parent exports the model first and passes the files in spec["exported"]
    requires = ()  # modules that must be importable, else the contender is skipped
    measures_peak = False  # run() returns GFLOP/s: the sgemm row

    @classmethod
    def unavailable(cls, spec):
        """Why this contender cannot run with ``spec`` (checked in the parent, without importing it), or None."""
        import importlib.util

        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        return f"{'/'.join(missing)} not importable" if missing else None

    @classmethod
    def preparation(cls, spec):
        """What :meth:`prepare` will do for ``spec`` (a log line), or None when there is nothing to prepare."""
        return None

    @classmethod
    def prepare(cls, spec):
        """Work done once, in a process of its own, before the contenders start (e.g. quantize the export), so
        no contender's peak RSS includes it; returns ``{'error': ...}`` on failure."""
        return {}

    @staticmethod
    def precision(spec):
        """The arithmetic the contender runs in; only fp32 rows are held to the fp32 sgemm peak."""
        return "fp32"

    def run(self):
        raise NotImplementedError

    def work(self):
        raise NotImplementedError

    def output(self):
        return None
