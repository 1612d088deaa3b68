"""The training loop's side of the training records (:mod:`paddlevideo.visualization.records`).

``train_model`` opens one recorder per run (rank 0 records, the other ranks get a disabled one), feeds it
every log line and every validation, draws ``training_curves.png`` after each validation and at the end,
and closes it in a ``finally``. The x axis of the per-step records is the training iteration (batches since
the start of training, counted over all epochs, resumed runs included): ``epoch * batches_per_epoch +
step + 1`` with the 0-based ``epoch`` and ``step`` of the log line.
"""

from ..common.logger import get_logger


def use_visualdl(cfg, switch=False):
    """VisualDL on: ``main.py --use_vdl`` (``switch``) or the config's ``use_visualdl`` key."""
    return bool(switch) or bool(cfg.use_visualdl)


def open_recorder(out_dir, rank, iterations_done, epochs_done, visualdl):
    """The run's :class:`~paddlevideo.visualization.records.TrainingRecorder`.

    Args:
        out_dir: the run's output folder (records, curves and ``vdl/`` go there).
        rank: this process's rank; only rank 0 records.
        iterations_done, epochs_done: where a resumed run starts (its records up to there are kept);
            ``epochs_done`` 0 starts the records afresh.
        visualdl: also write VisualDL logs (imports VisualDL; not installed -> a one-line UserError).
    """
    from ..visualization.records import TrainingRecorder

    resume_from = (int(epochs_done), int(iterations_done)) if epochs_done else None
    return TrainingRecorder(out_dir, use_visualdl=visualdl, resume_from=resume_from, enabled=rank == 0)


def draw_curves(recorder, title=None):
    """Write ``training_curves.png`` from the records so far. A picture that cannot be drawn (full disk,
    removed folder) is a warning: the numbers stay in the records file and training goes on."""
    try:
        path = recorder.draw_curves(title)
    except Exception as err:  # a plotting failure must not end a training run; it is named in one line
        get_logger().warning("training curves not drawn (%s: %s); the numbers are in %s", type(err).__name__,
                             str(err).splitlines()[0] if str(err) else "", recorder.records_path)
        return None
    return path


def close_recorder(recorder, title=None):
    """Draw the final curves and close the records and the VisualDL log (call in a ``finally``)."""
    if recorder is None:
        return
    try:
        if recorder.enabled and recorder.records:
            draw_curves(recorder, title)
    finally:
        recorder.close()
