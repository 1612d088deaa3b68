"""A training run's records: JSON lines in the output folder, VisualDL scalars if asked, training_curves.png.

The training loop holds one :class:`TrainingRecorder` and calls it at each log line and each epoch end::

    recorder = TrainingRecorder(out_dir, use_visualdl=True, enabled=rank == 0)
    recorder.log_step(step, loss=..., top1=..., top5=..., lr=..., ips=...)
    recorder.log_epoch(epoch, split="val", loss=..., top1=..., top5=...)
    recorder.draw_curves()      # after each validation and at the end
    recorder.close()

Files under the output folder: ``training_records.jsonl`` (one JSON object per record, always),
``training_curves.png`` (on :meth:`~TrainingRecorder.draw_curves`) and ``vdl/vdlrecords.<time>.log``
(with VisualDL; ``visualdl --logdir <output_dir>/vdl`` shows it). VisualDL tags: ``train/<name>`` per step,
``<split>/<name>`` per epoch (e.g. ``val/top1``).
"""

import json
import math
import os
import time

from ..common.logger import get_logger
from .curves import plot_training_curves
from .files import VisualizationError, write_text

RECORDS_FILE = "training_records.jsonl"
CURVES_FILE = "training_curves.png"
VDL_DIR = "vdl"
VDL_FLUSH_SECS = 10  # VisualDL's writer thread writes the file at least this often (no flush call: see _visualdl_ok)


def _visualdl_worker(writer):
    """VisualDL's background writer thread (a private attribute chain; None if VisualDL changes it)."""
    try:
        return writer._file_writer._async_writer._worker
    except AttributeError:
        return None


def read_records(path):
    """The records in a ``training_records.jsonl`` (a torn last line, from a killed run, is dropped)."""
    records = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if number < len(lines) - 1:  # not the last line: the file is damaged, say where
                raise VisualizationError(f"{path}: line {number} is not JSON; delete or repair the file") from None
    return records


def _number(name, value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"record value '{name}' must be a number, got {value!r}") from None
    return value if math.isfinite(value) else None  # JSON has no NaN: a non-finite value is stored as null


class TrainingRecorder:
    """Keeps a training run's scalars and shows them as JSON lines, VisualDL logs and a PNG.

    Args:
        output_dir: the run's output folder.
        use_visualdl: also write VisualDL scalars under ``<output_dir>/vdl`` (needs ``pip install visualdl``).
        resume_from: ``(epoch, step)`` when the run resumes: records up to that epoch and step are kept (and
            replayed into the new VisualDL log), later ones dropped; None starts the records afresh.
        enabled: False makes every call a no-op (e.g. on processes other than rank 0).
    """

    def __init__(self, output_dir, use_visualdl=False, resume_from=None, enabled=True):
        self.output_dir = str(output_dir)
        self.enabled = bool(enabled)
        self.records = []
        self._writer = None
        self._file = None
        if not self.enabled:
            return
        path = self.records_path
        os.makedirs(self.output_dir, exist_ok=True)
        if resume_from is not None and os.path.isfile(path):
            last_epoch, last_step = resume_from
            self.records = [r for r in read_records(path)
                            if (r.get("kind") == "step" and r["step"] <= last_step)
                            or (r.get("kind") == "epoch" and r["epoch"] <= last_epoch)]
        write_text(path, "".join(json.dumps(r) + "\n" for r in self.records))
        self._file = open(path, "a", encoding="utf-8")
        if use_visualdl:
            self._writer = self._open_visualdl()
            for record in self.records:
                self._add_scalars(record)

    @property
    def records_path(self):
        return os.path.join(self.output_dir, RECORDS_FILE)

    @property
    def curves_path(self):
        return os.path.join(self.output_dir, CURVES_FILE)

    @property
    def visualdl_dir(self):
        return os.path.join(self.output_dir, VDL_DIR)

    def _open_visualdl(self):
        try:
            from visualdl import LogWriter
        except Exception as err:  # not installed, or its import failed (e.g. no writable home folder)
            raise VisualizationError(f"use_visualdl needs VisualDL ({type(err).__name__}: {err}); "
                                     "pip install visualdl, or turn use_visualdl off") from None
        os.makedirs(self.visualdl_dir, exist_ok=True)
        # VisualDL shows the newest vdlrecords file of a folder: earlier ones are this run's past
        # (replayed below when resuming) or a run this one replaces.
        for name in os.listdir(self.visualdl_dir):
            if name.startswith("vdlrecords."):
                os.remove(os.path.join(self.visualdl_dir, name))
        return LogWriter(logdir=self.visualdl_dir, file_name=f"vdlrecords.{time.time_ns()}.log",
                         flush_secs=VDL_FLUSH_SECS)

    def _visualdl_ok(self):
        """False (after one warning, VisualDL then off) once VisualDL's background writer thread has died:
        its queue would then fill and block training forever (e.g. a full disk during its flush)."""
        worker = _visualdl_worker(self._writer)
        if worker is None or worker.is_alive():
            return True
        get_logger().warning("VisualDL's log writer stopped (full disk or removed folder?); VisualDL logging is "
                             "off for the rest of the run, the records go on in %s", self.records_path)
        self._writer = None
        return False

    def _add_scalars(self, record):
        if self._writer is None or not self._visualdl_ok():
            return
        if record["kind"] == "step":
            prefix, step = "train", record["step"]
        else:
            prefix, step = record.get("split", "val"), record["epoch"]
        for name, value in record.items():
            if name in ("kind", "step", "epoch", "split") or value is None:
                continue
            self._writer.add_scalar(tag=f"{prefix}/{name}", value=value, step=int(step))

    def _append(self, record):
        self.records.append(record)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self._add_scalars(record)

    def log_step(self, step, **scalars):
        """Record training scalars (e.g. ``loss``, ``top1``, ``top5``, ``lr``, ``ips``) at global ``step``."""
        if self.enabled:
            self._append({"kind": "step", "step": int(step), **{k: _number(k, v) for k, v in scalars.items()}})

    def log_epoch(self, epoch, split="val", **scalars):
        """Record the scalars of one epoch's ``split`` (e.g. ``val``: ``loss``, ``top1``, ``top5``)."""
        if self.enabled:
            self._append({"kind": "epoch", "split": str(split), "epoch": int(epoch),
                          **{k: _number(k, v) for k, v in scalars.items()}})

    def draw_curves(self, title=None):
        """Write ``training_curves.png`` from the records so far; returns its path (None when disabled)."""
        if not self.enabled:
            return None
        plot_training_curves(self.records, self.curves_path, title)
        return self.curves_path

    def close(self):
        """Flush and close the records file and the VisualDL log (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._writer is not None and self._visualdl_ok():  # closing a dead writer would wait forever
            try:
                self._writer.close()
            except Exception as err:  # e.g. a full disk: the dashboard's tail is lost, the records are not
                get_logger().warning("VisualDL's log could not be closed (%s); the records are complete in %s",
                                     err, self.records_path)
        self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
