"""The training loop behind ``main.py``.

::

    train_model(cfg)                       lock the output dir, build, then:
        restore(run, resume)               the resume point (or a fresh start)
        for epoch in epochs:
            train_one_epoch(run, epoch)    updates of `window` micro-batches; log lines; NaN watch
            validate(run, epoch)           (--validate) top-1 on DATASET.valid, best checkpoint
            save_epoch(run, epoch)         .pdopt + .pdparams when the 0-based epoch % save_interval == 0,
                                           and after the last epoch (PaddleVideo's rule and file names)

Reproducibility: every epoch starts by seeding Python, NumPy and Paddle with ``seed + epoch`` and
setting the sampler's epoch, so an epoch's data order, augmentations and dropout depend only on the
seed and the epoch number. That is what makes a resumed run repeat an uninterrupted one.
"""

import contextlib
import math
import random
import time
from dataclasses import dataclass, field

import numpy as np
import paddle

from ..config import log_config, require
from ..common import dist
from ..common.errors import ConfigError, RunError
from ..common.logger import get_logger
from ..common.save_load import save
from . import recording, run_files
from .amp import amp_settings
from .loaders import build_loader
from .meters import AverageMeter, epoch_end_line, train_step_line


class TrainingDiverged(RunError):
    """The loss became NaN or infinite; the message names the step."""


class ValidationError(RunError):
    """Validation had no clip to evaluate."""


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


@dataclass
class Progress:
    """Where training stands; an epoch's ``.pdopt`` records it and ``restore`` reads it back."""

    epoch: int = 0  # completed epochs
    global_step: int = 0  # optimizer updates
    best_top1: float = 0.0


@dataclass
class Run:
    """What one training run works with, built once by :func:`build_run`."""

    cfg: object
    model: object
    optimizer: object
    lr_sched: object
    scaler: object
    amp_cfg: object
    loader: object
    valid_loader: object
    num_clips: int
    accum: int  # micro-batches per optimizer update, as configured (GRADIENT_ACCUMULATION)
    updates_per_epoch: int
    seed: int
    window: int = 0  # micro-batches per update actually used: accum, or all of an epoch shorter than accum
    iters_per_epoch: int = 0  # batches per epoch and process (the loader's length)
    max_iters: int = None
    world: int = 1
    rank: int = 0
    iters_done: int = 0  # micro-batches since this process started (for --max_iters and the ETA)
    total_iters: int = 0
    started: float = field(default_factory=time.time)
    losses: list = field(default_factory=list)  # per-micro-batch losses of this process (for tests)
    recorder: object = None  # TrainingRecorder (disabled off rank 0); None outside train_model
    profiler: object = None  # profiling.IterationProfiler (-p/--profiler_options) or None

    @property
    def usable_iters(self):
        """Micro-batches per epoch that fill whole accumulation windows."""
        return self.updates_per_epoch * self.window

    @property
    def epochs(self):
        return int(self.cfg.epochs)

    @property
    def out_dir(self):
        return run_files.output_dir_of(self.cfg)

    @property
    def model_name(self):
        return self.cfg.model_name

    @property
    def batch_size(self):
        return int(self.cfg.DATASET.batch_size)


def train_model(cfg, weights=None, validate=False, amp=False, amp_level="O1", max_iters=None, resume=False,
                seed=1234, use_visualdl=False, trust_pickle=False, profiler_options=None):
    """Train ``cfg.MODEL`` on ``DATASET.train`` for ``cfg.epochs`` epochs.

    Args:
        cfg: the full config (AttrDict).
        weights: a full checkpoint to start from (``-w``), loaded with exact key checks.
        validate: evaluate on ``DATASET.valid`` after every epoch and keep the best top-1.
        amp, amp_level: ``--amp`` / ``--amp_level`` (see :func:`paddlevideo.tasks.amp.amp_settings`).
        max_iters: stop after this many micro-batches in total (for benchmarks and tests).
        resume: continue from the latest epoch checkpoint in the output dir.
        seed: base seed; epoch ``e`` (0-based) runs with ``seed + e``.
        use_visualdl: ``--use_vdl``: VisualDL logs in ``<output_dir>/vdl`` (also on with the config's
            ``use_visualdl``). ``training_records.jsonl`` and ``training_curves.png`` are always written
            (rank 0; :mod:`paddlevideo.tasks.recording`).
        trust_pickle: read ``-w``, ``MODEL.backbone.pretrained`` and the resumed ``.pdparams`` / ``.pdopt``
            with full unpickling (``--trust-pickle``; see ``utils.save_load.load``).
        profiler_options: ``-p/--profiler_options``, PaddleVideo's option string for Paddle's profiler over a
            range of iterations (:mod:`paddlevideo.tasks.profiling`); None: no profiling.
    Returns:
        dict with ``best_top1``, ``epochs_done``, ``global_step``, ``output_dir``, ``train_loss``
        (list of per-micro-batch losses of this process, as floats, for tests).
    Raises:
        TrainingDiverged: NaN/inf loss. ConfigError, RunDirError, ResumeError and the loader's errors
        (all UserError): inputs that need fixing. The output dir lock is released on every exit.
    """
    require(cfg, ("MODEL", "OPTIMIZER", "DATASET.train", "PIPELINE.train")
            + (("DATASET.valid", "PIPELINE.valid") if validate else ()), "training")
    world = dist.init_distributed()
    out_dir = run_files.output_dir_of(cfg)
    is_main = dist.get_rank() == 0
    if is_main:
        run_files.prepare_output_dir(out_dir)
    with run_files.RunLock(out_dir, enabled=is_main):
        if is_main:
            log_config(cfg)
            run_files.remove_leftover_tmp(out_dir)
        run = build_run(cfg, weights, validate, amp, amp_level, max_iters, seed, world, trust_pickle)
        progress = restore(run, resume, trust_pickle)
        run.recorder = recording.open_recorder(out_dir, run.rank, progress.epoch * run.usable_iters, progress.epoch,
                                               recording.use_visualdl(cfg, use_visualdl))
        if profiler_options:
            from .profiling import IterationProfiler

            run.profiler = IterationProfiler(profiler_options, out_dir)
            if run.profiler.stop_after and not (max_iters and max_iters < run.profiler.stop_after):
                max_iters = run.max_iters = run.profiler.stop_after  # exit_on_finished: stop where profiling ends
        try:
            _train_epochs(run, progress, validate, max_iters)
        finally:  # the records are complete and the VisualDL log flushed however training ends
            if run.profiler is not None:
                run.profiler.close()
            recording.close_recorder(run.recorder, run.model_name)
    return {"best_top1": progress.best_top1, "epochs_done": progress.epoch, "global_step": progress.global_step,
            "output_dir": out_dir, "train_loss": run.losses}


def _train_epochs(run, progress, validate, max_iters):
    if run.world > 1:
        run.model = paddle.DataParallel(run.model)
    _log_plan(run, progress)
    run.total_iters = (run.epochs - progress.epoch) * run.usable_iters
    if max_iters:
        run.total_iters = min(run.total_iters, int(max_iters))
    run.started = time.time()
    for epoch in range(progress.epoch, run.epochs):
        if not train_one_epoch(run, epoch, progress):
            why = "-p/--profiler_options exit_on_finished" if run.profiler and run.profiler.stop_after == max_iters \
                else "--max_iters"
            get_logger().info("stopping after %d iterations (%s; epoch %d not completed, no checkpoint)", max_iters,
                              why, epoch + 1)
            break
        _step_lr(run, "iter", run.iters_per_epoch - run.usable_iters)  # skipped batches still count (PaddleVideo)
        _step_lr(run, "epoch")
        if validate:
            validate_epoch(run, epoch, progress)
        save_epoch(run, epoch, progress)
        dist.barrier()
        progress.epoch = epoch + 1
        if run.max_iters and run.iters_done >= run.total_iters:
            break


def build_run(cfg, weights, validate, amp, amp_level, max_iters, seed, world, trust_pickle=False):
    """Model (``-w`` loaded), loaders, optimizer, LR schedule and AMP settings, in a fixed order (the random
    draws of model initialisation must not depend on anything else)."""
    from ..modeling.builder import build_model
    from ..modeling.weights import load_checkpoint
    from ..solver import build_optimizer

    accum = accumulation_steps(cfg, world)
    amp_cfg = amp_settings(amp, amp_level)
    if amp_cfg.warning:
        get_logger().warning(amp_cfg.warning)
    seed_everything(seed)
    model = build_model(cfg.MODEL, trust_pickle=trust_pickle)
    if weights:
        load_checkpoint(model, weights, trust_pickle=trust_pickle)
    train_loader, train_set = build_loader(cfg, "train")
    valid_loader = build_loader(cfg, "valid")[0] if validate else None
    updates_per_epoch, window = _update_windows(len(train_loader), accum, int(cfg.DATASET.batch_size) * world)
    optimizer, lr_sched = build_optimizer(cfg.OPTIMIZER, model, updates_per_epoch, int(cfg.epochs),
                                          iters_per_epoch=len(train_loader))
    scaler = paddle.amp.GradScaler(init_loss_scaling=amp_cfg.init_loss_scaling) if amp_cfg.use_scaler else None
    if amp_cfg.decorate:
        model, optimizer = paddle.amp.decorate(models=model, optimizers=optimizer, level=amp_cfg.level,
                                               master_weight=amp_cfg.master_weight)
    return Run(cfg=cfg, model=model, optimizer=optimizer, lr_sched=lr_sched, scaler=scaler, amp_cfg=amp_cfg,
               loader=train_loader, valid_loader=valid_loader, num_clips=len(train_set), accum=accum,
               updates_per_epoch=updates_per_epoch, window=window, iters_per_epoch=len(train_loader), seed=seed,
               max_iters=max_iters, world=world, rank=dist.get_rank())


def _update_windows(iters_per_epoch, accum, clips_per_iter):
    """``(updates per epoch, micro-batches per update)`` for an epoch of ``iters_per_epoch`` batches.

    Normally ``accum`` micro-batches make an update, and the last batches of an epoch that do not fill a whole
    window are skipped (with a warning). An epoch shorter than one window (a small list, e.g. PaddleVideo's
    8-clip test lists against a global batch of 64) makes one update from all its batches instead, their mean
    gradient (each loss divided by the batches it really has, not by ``accum``), with a warning saying how many
    clips that update averages; the learning rate is used as configured. (PaddleVideo never updates then.)
    """
    if iters_per_epoch == 0:
        raise ConfigError("the training list has fewer clips than one batch per process (DATASET.batch_size x "
                          "processes); use more data or a smaller batch_size")
    if iters_per_epoch < accum:
        get_logger().warning("an epoch has %d batches per process but one update accumulates %d "
                             "(GRADIENT_ACCUMULATION.global_batch_size %d): each epoch makes one update from its %d "
                             "batches, their mean gradient (%d clips instead of %d); the learning rate is not "
                             "rescaled", iters_per_epoch, accum, accum * clips_per_iter, iters_per_epoch,
                             iters_per_epoch * clips_per_iter, accum * clips_per_iter)
        return 1, iters_per_epoch
    if iters_per_epoch % accum:
        get_logger().warning("the last %d batches of each epoch do not fill an accumulation window of %d and are "
                             "skipped", iters_per_epoch % accum, accum)
    return iters_per_epoch // accum, accum


def restore(run, resume, trust_pickle=False):
    """The :class:`Progress` to start from: an epoch checkpoint (``--resume`` / ``resume_epoch``) loaded into
    the model, optimizer and loss scaler, or a fresh start. See ``run_files.resume_epoch`` for the rules."""
    from ..modeling.weights import load_checkpoint

    wanted = int(run.cfg.resume_epoch)
    if not (wanted or resume):
        if run.rank == 0:
            run_files.warn_if_overwriting(run.out_dir, run.model_name)
        return Progress()
    epoch = run_files.resume_epoch(run.out_dir, run.model_name, wanted)
    if not epoch:
        return Progress()
    model_state, opt_state = run_files.load_epoch(run.out_dir, run.model_name, epoch, trust_pickle)
    load_checkpoint(run.model, model_state)
    run_files.load_portable_optimizer_state(run.optimizer, run.model, opt_state["optimizer"],
                                            portable=bool(opt_state.get("portable")))
    if run.scaler is not None and opt_state.get("scaler"):
        run.scaler.load_state_dict(opt_state["scaler"])
    done = int(opt_state.get("epoch", epoch))
    progress = Progress(epoch=done, global_step=int(opt_state.get("global_step", done * run.updates_per_epoch)),
                        best_top1=float(opt_state.get("best_top1", 0.0)))
    get_logger().info("resumed from epoch %d (%s)", done, run_files.epoch_prefix(run.out_dir, run.model_name, epoch))
    return progress


def _log_plan(run, progress):
    get_logger().info("training %s: %d clips, %d process(es), batch %d per process, %d accumulation step(s) "
                      "(global batch %d), %d updates per epoch, epochs %d..%d", run.model_name, run.num_clips,
                      run.world, run.batch_size, run.window, run.batch_size * run.world * run.window,
                      run.updates_per_epoch, progress.epoch + 1, run.epochs)


class NanWatch:
    """Finds the first micro-batch whose loss is NaN/inf without a host sync per step: the index of the first
    bad one stays on the device and is read by :meth:`check` once per log line."""

    def __init__(self, usable_iters, accum):
        self.usable_iters = usable_iters
        self.accum = accum
        self.first_bad = None  # device int64 scalar, -1 while every loss was finite

    def observe(self, loss, index):
        """Record the loss of micro-batch ``index`` (counted from the start of training, all epochs)."""
        if self.first_bad is None:
            self.first_bad = paddle.full([], -1, "int64")
        bad = paddle.logical_and(paddle.logical_not(paddle.isfinite(loss)), self.first_bad < 0)
        self.first_bad = paddle.where(bad, paddle.full([], index, "int64"), self.first_bad)

    def check(self):
        """Raise :class:`TrainingDiverged` naming the epoch and step if a loss seen so far was NaN/inf."""
        if self.first_bad is None:
            return
        index = int(self.first_bad.item())
        if index >= 0:
            epoch, step = divmod(index, self.usable_iters)
            raise TrainingDiverged(f"loss became NaN/inf at epoch {epoch + 1} step {step} (update "
                                   f"{index // self.accum + 1}); training stopped, the last saved checkpoint is "
                                   "left as it was. Lower the learning rate or enable grad_clip.")


class EpochMeter:
    """Per-micro-batch ``[loss, top1, top5]`` kept on the device until a log line reads them, plus costs."""

    def __init__(self):
        self.window = []  # device tensors since the last log line
        self.meters = {k: AverageMeter() for k in ("loss", "top1", "top5", "batch_cost", "reader_cost")}

    def add(self, outputs):
        """Queue a micro-batch's metrics; returns them as one float32 device tensor ``[3]``."""
        stats = paddle.stack([outputs["loss"].detach(), outputs["top1"].detach().astype("float32"),
                              outputs["top5"].detach().astype("float32")]).astype("float32")
        self.window.append(stats)
        return stats

    def flush(self, losses):
        """Move the queued metrics to the host (one sync); appends the losses to ``losses``; returns the
        window mean ``[loss, top1, top5]``."""
        values = paddle.stack(self.window).numpy()
        for row in values:
            for name, value in zip(("loss", "top1", "top5"), row):
                self.meters[name].update(value)
            losses.append(float(row[0]))
        self.window = []
        return values.mean(axis=0)

    def avg(self, name):
        return self.meters[name].avg


def train_one_epoch(run, epoch, progress):
    """Train epoch ``epoch`` (0-based): ``updates_per_epoch`` updates of ``window`` micro-batches each.

    Returns False when ``--max_iters`` ended it before its last update (nothing is saved then).
    """
    seed_everything(run.seed + epoch)
    sampler = getattr(run.loader, "batch_sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(run.seed + epoch)
    run.model.train()
    meter, watch = EpochMeter(), NanWatch(run.usable_iters, run.window)
    step, stop = 0, False  # step: micro-batch index in the epoch
    with contextlib.closing(iter(run.loader)) as batches:
        tic = time.time()
        for _ in range(run.updates_per_epoch):
            for micro in range(run.window):
                if run.profiler is not None:
                    run.profiler.step()
                data = next(batches)
                reader_cost = time.time() - tic
                outputs = _forward_backward(run, data, sync=micro == run.window - 1)
                if micro == run.window - 1:
                    _optimizer_step(run, progress)
                watch.observe(meter.add(outputs)[0], epoch * run.usable_iters + step)
                run.iters_done += 1
                batch_cost = time.time() - tic
                meter.meters["batch_cost"].update(batch_cost)
                meter.meters["reader_cost"].update(reader_cost)
                stop = bool(run.max_iters) and run.iters_done >= run.total_iters
                if (step + 1) % _log_interval(run) == 0 or step + 1 == run.usable_iters or stop:
                    watch.check()
                    _log_step(run, epoch, step, meter.flush(run.losses), batch_cost, reader_cost)
                _step_lr(run, "iter")  # after the iteration's update and log line, as PaddleVideo steps iter_step
                step += 1
                if stop:
                    break
                tic = time.time()
            if stop:
                break
    _log_epoch_end(run, epoch, meter)
    return step == run.usable_iters


def _forward_backward(run, data, sync):
    """Forward and backward of one micro-batch; gradients are all-reduced only when ``sync`` (the last
    micro-batch of an update) in a multi-process run."""
    no_sync = run.model.no_sync() if run.world > 1 and not sync else contextlib.nullcontext()
    with no_sync:
        amp = run.amp_cfg
        with paddle.amp.auto_cast(enable=amp.enabled, level=amp.level, dtype=amp.dtype):
            outputs = run.model(data, mode="train")
        loss = outputs["loss"] / run.window  # the update's gradient is the mean over its micro-batches
        (run.scaler.scale(loss) if run.scaler is not None else loss).backward()
    return outputs


def _optimizer_step(run, progress):
    if run.scaler is not None:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.optimizer.clear_grad()
    progress.global_step += 1
    _step_lr(run, "step")


def _step_lr(run, unit, times=1):
    """Step the schedule ``times`` times if it steps per ``unit`` (``iter``, ``step`` = update, ``epoch``)."""
    if getattr(run.lr_sched, "step_unit", None) == unit:
        for _ in range(times):
            run.lr_sched.step()


def _log_interval(run):
    return int(run.cfg.log_interval)


def _log_step(run, epoch, step, mean, batch_cost, reader_cost):
    elapsed = time.time() - run.started
    eta = elapsed / run.iters_done * (run.total_iters - run.iters_done)
    lr, ips = run.optimizer.get_lr(), run.batch_size / max(batch_cost, 1e-9)
    get_logger().info(train_step_line(epoch + 1, run.epochs, step, mean[0], lr, mean[1], mean[2],
                                      batch_cost, reader_cost, ips, eta))
    if run.recorder is not None:  # the numbers of the line above, unrounded
        run.recorder.log_step(epoch * run.usable_iters + step + 1, loss=mean[0], top1=mean[1], top5=mean[2], lr=lr,
                              ips=ips)


def _log_epoch_end(run, epoch, meter):
    loss, top1, top5 = dist.all_reduce_mean([meter.avg("loss"), meter.avg("top1"), meter.avg("top5")])
    cost = meter.avg("batch_cost")
    get_logger().info(epoch_end_line(epoch + 1, "train", loss, top1, top5, batch_cost=cost,
                                     reader_cost=meter.avg("reader_cost"), ips=run.batch_size / max(cost, 1e-9)))


def validate_epoch(run, epoch, progress):
    """``--validate``: evaluate after epoch ``epoch`` (0-based); a new best top-1 is saved (rank 0)."""
    metrics = evaluate(run.model, run.valid_loader, epoch + 1, run.amp_cfg)
    top1 = metrics["top1"]
    if run.recorder is not None:
        run.recorder.log_epoch(epoch + 1, split="val", **metrics)
        recording.draw_curves(run.recorder, run.model_name)
    if top1 > progress.best_top1:
        progress.best_top1 = top1
        if run.rank == 0:
            save(_unwrap(run.model).state_dict(), run_files.best_path(run.out_dir, run.model_name))
            get_logger().info("Already save the best model (top1 acc)%.4f", top1)


def save_epoch(run, epoch, progress):
    """Rank 0 writes epoch ``epoch`` (0-based)'s ``.pdopt`` + ``.pdparams`` (named by the 1-based epoch) when
    ``epoch % save_interval == 0`` and after the last epoch: PaddleVideo's rule, so ``save_interval: 3`` over 10
    epochs writes ``_epoch_00001``, ``_00004``, ``_00007`` and ``_00010`` (:func:`run_files.saves_epoch`)."""
    if run.rank != 0 or not run_files.saves_epoch(epoch, int(run.cfg.save_interval), run.epochs):
        return
    model = _unwrap(run.model)
    opt_state = {"optimizer": run_files.portable_optimizer_state(run.optimizer, model), "portable": True,
                 "epoch": epoch + 1, "global_step": progress.global_step, "best_top1": progress.best_top1,
                 "seed": run.seed, "scaler": run.scaler.state_dict() if run.scaler is not None else None}
    prefix = run_files.save_epoch(run.out_dir, run.model_name, epoch + 1, model.state_dict(), opt_state)
    get_logger().info("saved %s.pdparams / .pdopt", prefix)


@paddle.no_grad()
def evaluate(model, loader, epoch, amp_cfg):
    """Mean loss / top-1 / top-5 over the valid loader (clip-weighted, all processes); logs ``END epoch``.

    Returns ``{"loss", "top1", "top5"}`` (floats; the numbers of the ``END epoch`` line, unrounded).
    Raises:
        ValidationError: no clip was evaluated (a top-1 of nothing is not 0).
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
    if totals[3] <= 0:
        raise ValidationError(f"validation after epoch {epoch} evaluated no clip; check DATASET.valid")
    loss, top1, top5 = (totals[:3] / totals[3]).tolist()
    get_logger().info(epoch_end_line(epoch, "val", loss, top1, top5))
    model.train()
    if not math.isfinite(loss):
        get_logger().warning("validation loss is not finite at epoch %d", epoch)
    return {"loss": loss, "top1": top1, "top5": top5}
