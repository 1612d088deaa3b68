"""Helpers shared by the engine tests: a tiny generated demo dataset and configs for it."""

import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"

# Linear in the gradients (unlike Adam), so accumulated / all-reduced gradients can be compared to 1e-5.
MOMENTUM = ("OPTIMIZER={name: Momentum, momentum: 0.9, use_nesterov: True, weight_decay: {name: L2, value: 0.0001}, "
            "learning_rate: {name: MultiStepDecay, learning_rate: 0.05, milestones: [1], gamma: 0.1}}")


def make_data(folder, num_train=16, num_val=8):
    from paddlevideo.loader.demo_data import make_demo_dataset

    return make_demo_dataset(str(folder), num_train=num_train, num_val=num_val, seed=0, num_frames=8, size=32)


def data_overrides(folder):
    folder = str(folder)
    out = []
    for mode, name in (("train", "train"), ("valid", "val"), ("test", "val")):
        out += [f"DATASET.{mode}.data_prefix={folder}", f"DATASET.{mode}.file_path={os.path.join(folder, name + '.list')}"]
    return out


def demo_cfg(data_dir, out_dir, *extra):
    from paddlevideo.utils import get_config

    return get_config(str(DEMO_CONFIG), data_overrides(data_dir) + [f"output_dir={out_dir}", "log_interval=1",
                                                                   *extra], show=False)


def load_params(path):
    import paddle

    return {k: np.asarray(v) for k, v in paddle.load(str(path)).items()}


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
