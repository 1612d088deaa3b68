"""PP-TimeSformer's optimizer recipe against independent computations: CustomWarmupCosineDecay at every step (the
spec's formula and stepping), and one Momentum update of the PP model with its no-decay marks (numpy)."""

import math

import numpy as np
import paddle
import pytest

from conftest import REPO
from paddlevideo.modeling import build_model
from paddlevideo.modeling.weight_decay import no_weight_decay_names
from paddlevideo.solver import CustomWarmupCosineDecay, build_lr, build_optimizer
from paddlevideo.config import AttrDict, ConfigError, get_config

PP_CONFIG = REPO / "configs" / "recognition" / "pptimesformer" / "pptimesformer_k400_videos.yaml"
SCHEDULE = {"name": "CustomWarmupCosineDecay", "iter_step": True, "max_epoch": 20, "warmup_epochs": 2,
            "warmup_start_lr": 0.00025, "cosine_base_lr": 0.0025}


def spec_lr(epoch, warmup_start_lr=0.00025, warmup_epochs=2, cosine_base_lr=0.0025, max_epoch=20):
    """The spec's formula at fractional epoch ``epoch``."""
    def cosine(x):
        return cosine_base_lr * (1 + math.cos(math.pi * x / max_epoch)) / 2

    if epoch >= warmup_epochs:
        return cosine(epoch)
    return warmup_start_lr + epoch * (cosine(warmup_epochs) - warmup_start_lr) / warmup_epochs


def spec_epochs(num_iters, steps):
    """The fractional epoch after each of ``steps`` step() calls: 0 at construction, then + 1/num_iters each."""
    epoch, out = 0, [0]
    for _ in range(steps):
        epoch += 1 / num_iters
        out.append(epoch)
    return out


@pytest.mark.parametrize("num_iters", [7, 250])
def test_custom_warmup_cosine_at_every_step_of_two_epochs_and_more(num_iters):
    sched = build_lr(SCHEDULE, updates_per_epoch=1, epochs=20, iters_per_epoch=num_iters)
    assert isinstance(sched, CustomWarmupCosineDecay) and sched.step_unit == "iter" and sched.num_iters == num_iters
    steps = 3 * num_iters  # the two warm-up epochs and into the cosine
    got = [sched.get_lr()]
    for _ in range(steps):
        sched.step()
        got.append(sched.get_lr())
    want = [spec_lr(e) for e in spec_epochs(num_iters, steps)]
    assert got == want  # bit for bit: the same float sums in the same order
    assert got[0] == 0.00025 and abs(got[2 * num_iters] - spec_lr(2.0)) < 1e-12
    # the warm-up ends where the cosine stands at epoch 2, below cosine_base_lr
    assert spec_lr(2.0) < 0.0025 and max(got) <= spec_lr(2.0) + 1e-15


def test_custom_warmup_cosine_per_epoch_and_errors():
    sched = build_lr({**SCHEDULE, "iter_step": False}, updates_per_epoch=9, epochs=20)
    assert sched.step_unit == "epoch" and sched.num_iters == 1
    got = [sched.get_lr()] + [sched.step() or sched.get_lr() for _ in range(4)]
    assert got == [spec_lr(e) for e in range(5)]
    sched.step(epoch=1.5)
    assert sched.get_lr() == spec_lr(1.5)
    with pytest.raises(ConfigError, match=r"CustomWarmupCosineDecay.*warmup_start_lr"):
        build_lr({"name": "CustomWarmupCosineDecay", "max_epoch": 2}, 1, 1)


def test_custom_warmup_cosine_state_resumes_exactly():
    sched = build_lr(SCHEDULE, 1, 20, iters_per_epoch=13)
    for _ in range(20):
        sched.step()
    other = build_lr(SCHEDULE, 1, 20, iters_per_epoch=13)
    other.set_state_dict(sched.state_dict())
    for _ in range(5):
        sched.step()
        other.step()
        assert other.get_lr() == sched.get_lr()


def test_one_momentum_update_of_the_pp_model_matches_numpy():
    """The PP config's optimizer (Momentum 0.9, Nesterov, L2 decay, global-norm clip 40) on the PP model: the marked
    parameters get no decay, every other parameter does; every parameter's change is checked against numpy. (The
    learning rate and decay are raised here so the decay term stands far above float32 rounding.)"""
    cfg = get_config(str(PP_CONFIG), ["MODEL.backbone.pretrained=", "MODEL.backbone.img_size=32",
                                      "MODEL.backbone.patch_size=8", "MODEL.backbone.embed_dim=64",
                                      "MODEL.backbone.depth=2", "MODEL.backbone.num_heads=4",
                                      "MODEL.head.num_classes=5", "INFERENCE.target_size=32",
                                      "PIPELINE.train.transform.3.RandomCrop={target_size: 32}",
                                      "PIPELINE.valid.transform.3.CenterCrop={target_size: 32}",
                                      "PIPELINE.test.transform.3.UniformCrop={target_size: 32}",
                                      "OPTIMIZER.learning_rate.warmup_start_lr=0.1",
                                      "OPTIMIZER.weight_decay.value=0.5"], show=False)
    paddle.seed(0)
    model = build_model(cfg.MODEL)
    assert no_weight_decay_names(model) == ["backbone.cls_token", "backbone.pos_embed", "backbone.time_embed",
                                            "head.fc.bias"]
    optimizer, sched = build_optimizer(cfg.OPTIMIZER, model, updates_per_epoch=1, epochs=20, iters_per_epoch=4)
    rng = np.random.default_rng(0)
    for param in model.parameters():  # weights of size ~1, so decay moves every one of them visibly
        param.set_value(rng.standard_normal(param.shape).astype(np.float32))
    before = {n: p.numpy().astype(np.float64) for n, p in model.named_parameters()}
    grads = {n: rng.standard_normal(p.shape).astype(np.float32) * 3.0 for n, p in model.named_parameters()}
    for name, param in model.named_parameters():
        param.grad = paddle.to_tensor(grads[name])  # what backward() would have left there
    optimizer.step()

    lr, mu, wd, clip = 0.1, 0.9, 0.5, 40.0
    assert sched.get_lr() == lr
    norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    assert norm > clip  # clipping is active

    def update(name, decay):
        g = grads[name].astype(np.float64) * clip / norm + decay * before[name]
        velocity = g  # the first update: mu * 0 + g
        return -lr * (g + mu * velocity)  # Nesterov

    exempt = set(no_weight_decay_names(model))
    for name, param in model.named_parameters():
        got = param.numpy().astype(np.float64) - before[name]
        np.testing.assert_allclose(got, update(name, 0.0 if name in exempt else wd), rtol=1e-4, atol=1e-6,
                                   err_msg=name)
        if name in exempt:  # and visibly not the decayed update
            assert np.abs(got - update(name, wd)).max() > 1e-2, name


def test_the_pp_config_builds_its_schedule_from_the_loader_length():
    cfg = AttrDict({"name": "Momentum", "momentum": 0.9, "learning_rate": dict(SCHEDULE)})
    model = paddle.nn.Linear(2, 2)
    _, sched = build_optimizer(cfg, model, updates_per_epoch=3, epochs=20, iters_per_epoch=24)
    assert sched.num_iters == 24  # iterations (micro-batches), not the 3 updates
