"""The training loop behind ``main.py``: optimizer, accumulation, AMP, validation, checkpoints, resume.

Reproducibility: every epoch starts by seeding Python, NumPy and Paddle with ``seed + epoch`` and
setting the sampler's epoch, so an epoch's data order, augmentations and dropout depend only on the
seed and the epoch number. That is what makes a resumed run repeat an uninterrupted one.
"""

import contextlib
import math
import random
import time

import numpy as np
import paddle

from ..utils import dist
from ..utils.config import ConfigError
from ..utils.errors import UserError
from ..utils.logger import get_logger
from ..utils.save_load import save
from . import checkpoints
from .amp import amp_settings
from .checkpoints import output_dir_of
from .loaders import build_loader
from .meters import AverageMeter, epoch_end_line, train_step_line


class TrainingDiverged(UserError, RuntimeError):
    """The loss became NaN or infinite; the message names the step."""


def accumulation_steps(cfg, world_size):
    """Micro-batches per optimizer update: ``global_batch_size / (batch_size * world_size)``.

    Without a ``GRADIENT_ACCUMULATION`` section it is 1 (the global batch is batch_size x cards).
    Raises ConfigError when the division is not exact.
    """
    batch_size = int(cfg.DATASET.batch_size)
    section = cfg.get("GRADIENT_ACCUMULATION")
    if not section or section.get("global_batch_size") is None:
        return 1
    global_batch = int(section.global_batch_size)
    per_step = batch_size * world_size
    if global_batch < per_step or global_batch % per_step:
        raise ConfigError(
            f"GRADIENT_ACCUMULATION.global_batch_size ({global_batch}) must be a multiple of "
            f"DATASET.batch_size x processes ({batch_size} x {world_size} = {per_step}); change one of them")
    return global_batch // per_step


def seed_everything(seed):
    """Seed Python, NumPy and Paddle (the loader's worker seeds derive from NumPy's state)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    paddle.seed(seed)


def _unwrap(model):
    return model._layers if isinstance(model, paddle.DataParallel) else model


def _resume_epoch(cfg, resume, out_dir, model_name):
    """The 1-based epoch to resume from: ``resume_epoch`` in the config wins, ``--resume`` takes the latest."""
    wanted = int(cfg.get("resume_epoch") or 0)
    if wanted:
        return wanted
    if resume:
        latest = checkpoints.latest_epoch(out_dir, model_name)
        if latest is None:
            get_logger().warning("--resume: no '%s_epoch_*.pdopt' in %s; starting from scratch", model_name, out_dir)
        return latest or 0
    return 0


def train_model(cfg, weights=None, validate=False, amp=False, amp_level="O1", max_iters=None, resume=False,
                seed=1234):
    """Train ``cfg.MODEL`` on ``DATASET.train`` for ``cfg.epochs`` epochs.

    Args:
        cfg: the full config (AttrDict).
        weights: a full checkpoint to start from (``-w``), loaded with exact key checks.
        validate: evaluate on ``DATASET.valid`` after every epoch and keep the best top-1.
        amp, amp_level: ``--amp`` / ``--amp_level`` (see :func:`paddlevideo.tasks.amp.amp_settings`).
        max_iters: stop after this many micro-batches in total (for benchmarks and tests).
        resume: continue from the latest epoch checkpoint in the output dir.
        seed: base seed; epoch ``e`` (0-based) runs with ``seed + e``.
    Returns:
        dict with ``best_top1``, ``epochs_done``, ``global_step``, ``output_dir``, ``train_loss``
        (list of per-micro-batch losses of this process, as floats, for tests).
    Raises:
        TrainingDiverged: NaN/inf loss. ConfigError: inconsistent settings.
    """
    from ..modeling.builder import build_model
    from ..modeling.checkpoint import load_checkpoint

    logger = get_logger()
    world = dist.init_distributed()
    rank = dist.get_rank()
    model_name = cfg.get("model_name", "model")
    out_dir = output_dir_of(cfg)
    epochs = int(cfg.get("epochs", 1))
    log_interval = max(int(cfg.get("log_interval", 10)), 1)
    save_interval = max(int(cfg.get("save_interval", 1)), 1)
    accum = accumulation_steps(cfg, world)
    amp_cfg = amp_settings(amp, amp_level)
    if amp_cfg.warning:
        logger.warning(amp_cfg.warning)

    seed_everything(seed)
    model = build_model(cfg.MODEL)
    if weights:
        load_checkpoint(model, weights)

    train_loader, train_set = build_loader(cfg, "train")
    valid_loader = build_loader(cfg, "valid")[0] if validate else None
    iters_per_epoch = len(train_loader)
    updates_per_epoch = iters_per_epoch // accum
    if updates_per_epoch == 0:
        raise ConfigError(f"an epoch has {iters_per_epoch} batches per process but one update needs {accum} "
                          "(GRADIENT_ACCUMULATION); use more data or a smaller global_batch_size")
    if iters_per_epoch % accum:
        logger.warning("the last %d batches of each epoch do not fill an accumulation window of %d and are "
                       "skipped", iters_per_epoch % accum, accum)
    usable_iters = updates_per_epoch * accum

    from ..solver import build_optimizer

    optimizer, lr_sched = build_optimizer(cfg.OPTIMIZER, model, updates_per_epoch, epochs)
    scaler = paddle.amp.GradScaler(init_loss_scaling=amp_cfg.init_loss_scaling) if amp_cfg.use_scaler else None
    if amp_cfg.decorate:
        model, optimizer = paddle.amp.decorate(models=model, optimizers=optimizer, level=amp_cfg.level,
                                               master_weight=amp_cfg.master_weight)

    start_epoch, global_step, best_top1 = 0, 0, 0.0
    resume_from = _resume_epoch(cfg, resume, out_dir, model_name)
    if resume_from:
        model_state, opt_state = checkpoints.load_epoch(out_dir, model_name, resume_from)
        load_checkpoint(model, model_state)
        checkpoints.load_portable_optimizer_state(optimizer, model, opt_state["optimizer"],
                                                  portable=bool(opt_state.get("portable")))
        if scaler is not None and opt_state.get("scaler"):
            scaler.load_state_dict(opt_state["scaler"])
        start_epoch = int(opt_state.get("epoch", resume_from))
        global_step = int(opt_state.get("global_step", start_epoch * updates_per_epoch))
        best_top1 = float(opt_state.get("best_top1", 0.0))
        logger.info("resumed from epoch %d (%s)", start_epoch, checkpoints.epoch_prefix(out_dir, model_name,
                                                                                       resume_from))

    if world > 1:
        model = paddle.DataParallel(model)

    logger.info("training %s: %d clips, %d process(es), batch %d per process, %d accumulation step(s) "
                "(global batch %d), %d updates per epoch, epochs %d..%d", model_name, len(train_set), world,
                cfg.DATASET.batch_size, accum, cfg.DATASET.batch_size * world * accum, updates_per_epoch,
                start_epoch + 1, epochs)

    step_unit = getattr(lr_sched, "step_unit", None)
    total_iters = (epochs - start_epoch) * usable_iters
    if max_iters:
        total_iters = min(total_iters, int(max_iters))
    iters_done = 0
    epochs_done = start_epoch
    losses_seen = []
    stop = False
    batch_size = int(cfg.DATASET.batch_size)
    run_tic = time.time()

    for epoch in range(start_epoch, epochs):
        seed_everything(seed + epoch)
        sampler = getattr(train_loader, "batch_sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(seed + epoch)
        model.train()
        epoch_stats = {k: AverageMeter() for k in ("loss", "top1", "top5", "batch_cost", "reader_cost")}
        window = []  # device tensors [loss, top1, top5] since the last log line (no host sync per step)
        first_bad = None  # device scalar: global micro-batch index of the first non-finite loss, -1 if none
        tic = time.time()
        for i, data in enumerate(train_loader):
            if i >= usable_iters:
                break
            reader_cost = time.time() - tic
            is_update = (i + 1) % accum == 0
            sync_ctx = model.no_sync() if world > 1 and not is_update else contextlib.nullcontext()
            with sync_ctx:
                with paddle.amp.auto_cast(enable=amp_cfg.enabled, level=amp_cfg.level, dtype=amp_cfg.dtype):
                    outputs = model(data, mode="train")
                loss = outputs["loss"] / accum
                (scaler.scale(loss) if scaler is not None else loss).backward()
            if is_update:
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                optimizer.clear_grad()
                global_step += 1
                if step_unit == "step":
                    lr_sched.step()
            stats = paddle.stack([outputs["loss"].detach(), outputs["top1"].detach().astype("float32"),
                                  outputs["top5"].detach().astype("float32")]).astype("float32")
            window.append(stats)
            bad_now = paddle.logical_not(paddle.isfinite(stats[0]))
            index = paddle.full([], epoch * usable_iters + i, "int64")
            if first_bad is None:
                first_bad = paddle.full([], -1, "int64")
            first_bad = paddle.where(paddle.logical_and(bad_now, first_bad < 0), index, first_bad)
            iters_done += 1
            batch_cost = time.time() - tic
            epoch_stats["batch_cost"].update(batch_cost)
            epoch_stats["reader_cost"].update(reader_cost)
            last_in_epoch = i + 1 == usable_iters
            stop = bool(max_iters) and iters_done >= total_iters
            if (i + 1) % log_interval == 0 or last_in_epoch or stop:
                _check_finite(first_bad, usable_iters, accum)
                values = paddle.stack(window).numpy()
                for row in values:
                    epoch_stats["loss"].update(row[0])
                    epoch_stats["top1"].update(row[1])
                    epoch_stats["top5"].update(row[2])
                    losses_seen.append(float(row[0]))
                mean = values.mean(axis=0)
                window = []
                elapsed = time.time() - run_tic
                eta = elapsed / iters_done * (total_iters - iters_done)
                logger.info(train_step_line(epoch + 1, epochs, i, mean[0], optimizer.get_lr(), mean[1], mean[2],
                                            batch_cost, reader_cost, batch_size / max(batch_cost, 1e-9), eta))
            if stop:
                break
            tic = time.time()

        avg = dist.all_reduce_mean([epoch_stats[k].avg for k in ("loss", "top1", "top5")])
        cost = epoch_stats["batch_cost"].avg
        logger.info(epoch_end_line(epoch + 1, "train", *avg, batch_cost=cost,
                                   reader_cost=epoch_stats["reader_cost"].avg, ips=batch_size / max(cost, 1e-9)))
        if stop and epoch_stats["loss"].count < usable_iters:
            logger.info("stopping after --max_iters %d iterations (epoch %d not completed, no checkpoint)",
                        max_iters, epoch + 1)
            break
        if step_unit == "epoch":
            lr_sched.step()

        if validate:
            top1 = evaluate(model, valid_loader, epoch + 1, amp_cfg)
            if top1 > best_top1:
                best_top1 = top1
                if rank == 0:
                    save(_unwrap(model).state_dict(), checkpoints.best_path(out_dir, model_name))
                    logger.info("Already save the best model (top1 acc)%.4f", best_top1)
        if rank == 0 and ((epoch + 1) % save_interval == 0 or epoch + 1 == epochs):
            opt_state = {"optimizer": checkpoints.portable_optimizer_state(optimizer, _unwrap(model)),
                         "portable": True, "epoch": epoch + 1, "global_step": global_step,
                         "best_top1": best_top1, "seed": seed,
                         "scaler": scaler.state_dict() if scaler is not None else None}
            prefix = checkpoints.save_epoch(out_dir, model_name, epoch + 1, _unwrap(model).state_dict(), opt_state)
            logger.info("saved %s.pdparams / .pdopt", prefix)
        dist.barrier()
        epochs_done = epoch + 1
        if stop:
            break

    return {"best_top1": best_top1, "epochs_done": epochs_done,
            "global_step": global_step, "output_dir": out_dir, "train_loss": losses_seen}


def _check_finite(first_bad, usable_iters, accum):
    """Raise :class:`TrainingDiverged` if a loss since the last check was NaN/inf (one host sync)."""
    if first_bad is None:
        return
    index = int(first_bad.item())
    if index >= 0:
        epoch, step = divmod(index, usable_iters)
        raise TrainingDiverged(f"loss became NaN/inf at epoch {epoch + 1} step {step} (update {index // accum + 1}); "
                               "training stopped, the last saved checkpoint is left as it was. Lower the "
                               "learning rate or enable grad_clip.")


@paddle.no_grad()
def evaluate(model, loader, epoch, amp_cfg):
    """Mean loss / top-1 / top-5 over the valid loader (clip-weighted, all processes); logs ``END epoch``.

    Returns the top-1 accuracy as a float.
    """
    model.eval()
    sums = None
    for data in loader:
        n = int(data[0].shape[0])
        if n == 0:
            continue
        with paddle.amp.auto_cast(enable=amp_cfg.enabled, level=amp_cfg.level, dtype=amp_cfg.dtype):
            out = model(data, mode="valid")
        row = paddle.stack([out["loss"].astype("float32"), out["top1"].astype("float32"),
                            out["top5"].astype("float32"), paddle.to_tensor(1.0)]) * n
        sums = row if sums is None else sums + row
    totals = sums.numpy().astype("float64") if sums is not None else np.zeros(4)
    if dist.get_world_size() > 1:
        totals = np.asarray(dist.all_reduce_mean(totals.tolist())) * dist.get_world_size()
    count = max(totals[3], 1.0)
    loss, top1, top5 = (totals[:3] / count).tolist()
    get_logger().info(epoch_end_line(epoch, "val", loss, top1, top5))
    model.train()
    if not math.isfinite(loss):
        get_logger().warning("validation loss is not finite at epoch %d", epoch)
    return top1
