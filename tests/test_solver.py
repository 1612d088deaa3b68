"""Optimizers and schedules against independent numpy computations of their update rules."""

import math

import numpy as np
import paddle
import pytest

from paddlevideo.solver import build_lr, build_optimizer
from paddlevideo.config import AttrDict, ConfigError


class _One(paddle.nn.Layer):
    def __init__(self, value):
        super().__init__()
        self.w = self.create_parameter([len(value)], default_initializer=paddle.nn.initializer.Assign(value))


def _run(cfg, p0, grads, updates_per_epoch=1, epochs=1):
    model = _One(np.asarray(p0, "float32"))
    opt, _ = build_optimizer(AttrDict(cfg), model, updates_per_epoch, epochs)
    for g in grads:
        (model.w * paddle.to_tensor(np.asarray(g, "float32"))).sum().backward()  # d/dw = g
        opt.step()
        opt.clear_grad()
    return model.w.numpy()


def test_momentum_nesterov_l2_matches_numpy():
    rng = np.random.default_rng(0)
    p = rng.normal(size=5)
    grads = rng.normal(size=(4, 5))
    lr, mu, wd = 0.1, 0.9, 0.01
    got = _run({"name": "Momentum", "momentum": mu, "use_nesterov": True, "learning_rate": lr,
                "weight_decay": {"name": "L2", "value": wd}}, p, grads)
    v = np.zeros(5)
    for g in grads:
        g = g + wd * p
        v = mu * v + g
        p = p - lr * (g + mu * v)
    np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-6)


def test_adamw_with_global_norm_clip_matches_numpy():
    rng = np.random.default_rng(1)
    p = rng.normal(size=6)
    grads = rng.normal(size=(3, 6)) * 3.0  # norms around 7: clipping is active
    lr, b1, b2, eps, wd, clip = 1e-2, 0.9, 0.999, 1e-8, 0.05, 1.0
    got = _run({"name": "AdamW", "learning_rate": lr, "weight_decay": wd, "beta1": b1, "beta2": b2,
                "epsilon": eps, "grad_clip": {"name": "ClipGradByGlobalNorm", "value": clip}}, p, grads)
    m = np.zeros(6)
    v = np.zeros(6)
    for t, g in enumerate(grads, start=1):
        g = g * clip / max(np.linalg.norm(g), clip)
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-6)


def test_warmup_cosine_values():
    sched = build_lr({"name": "WarmupCosine", "learning_rate": 0.1, "warmup_steps": 5, "min_lr": 0.001},
                     updates_per_epoch=10, epochs=3)
    assert sched.step_unit == "step"
    got = []
    for _ in range(32):
        got.append(sched.get_lr())
        sched.step()
    want = []
    for s in range(32):
        if s < 5:
            want.append(0.1 * s / 5)
        else:
            frac = min((s - 5) / 25, 1.0)
            want.append(0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * frac)) / 2)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert got[-1] == pytest.approx(0.001)


def test_warmup_epochs_convert_to_steps():
    sched = build_lr({"name": "WarmupCosine", "learning_rate": 1.0, "warmup_epochs": 2}, updates_per_epoch=4, epochs=5)
    assert sched.warmup_steps == 8 and sched.total_steps == 20


def test_multistep_decay_per_epoch():
    sched = build_lr({"name": "MultiStepDecay", "learning_rate": 0.005, "milestones": [2, 4], "gamma": 0.1}, 7, 6)
    assert sched.step_unit == "epoch"
    got = []
    for _ in range(6):
        got.append(sched.get_lr())
        sched.step()
    np.testing.assert_allclose(got, [0.005, 0.005, 5e-4, 5e-4, 5e-5, 5e-5], rtol=1e-9)


def test_scheduler_state_roundtrip_through_optimizer():
    model = _One(np.zeros(2, "float32"))
    cfg = AttrDict({"name": "AdamW", "learning_rate": {"name": "WarmupCosine", "learning_rate": 0.1,
                                                       "warmup_steps": 3}, "weight_decay": 0.0})
    opt, sched = build_optimizer(cfg, model, 5, 2)
    for _ in range(4):
        sched.step()
    state = opt.state_dict()
    opt2, sched2 = build_optimizer(cfg, _One(np.zeros(2, "float32")), 5, 2)
    opt2.set_state_dict(state)
    assert sched2.last_epoch == 4 and sched2.get_lr() == pytest.approx(sched.get_lr())


@pytest.mark.parametrize("cfg, words", [
    ({"name": "SGDX", "learning_rate": 0.1}, "SGDX"),
    ({"name": "Momentum"}, "learning_rate"),
    ({"name": "Momentum", "learning_rate": {"name": "Poly", "learning_rate": 1}}, "Poly"),
    ({"name": "Momentum", "learning_rate": 0.1, "mometum": 0.9}, "mometum"),
    ({"name": "AdamW", "learning_rate": 0.1, "weight_decay": {"name": "L2", "value": 1}}, "weight_decay"),
])
def test_bad_optimizer_config_names_the_key(cfg, words):
    with pytest.raises(ConfigError, match=words):
        build_optimizer(AttrDict(cfg), _One(np.zeros(2, "float32")), 1, 1)
