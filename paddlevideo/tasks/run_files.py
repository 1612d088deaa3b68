"""The files of a training run's output folder (``output/<model_name>`` unless ``output_dir`` is set).

Layout:

- ``<model_name>_epoch_000NN.pdparams``: the model state dict after epoch NN (PaddleVideo format).
- ``<model_name>_epoch_000NN.pdopt``: ``{"optimizer": optimizer state incl. the LR schedule, keyed by
  structural parameter names, "portable": True, "epoch", "global_step", "best_top1", "seed", "scaler"}``.
- ``<model_name>_best.pdparams``: the weights with the best validation top-1 (``--validate``).
- ``run.lock``: present while a training run works in the folder (see :class:`RunLock`).

Every file is written atomically (``utils.save_load``). An epoch's ``.pdopt`` is written before its
``.pdparams``, so a ``.pdparams`` on disk means its pair was complete: a run killed between the two
writes leaves a lone ``.pdopt``, which ``--resume`` recognises as an interrupted save; a lone
``.pdparams`` means the optimizer state was lost afterwards, and ``--resume`` stops rather than guess.
"""

import datetime
import glob
import json
import os
import re
import socket
import sys

from ..common.errors import RunError
from ..common.logger import get_logger
from ..common.files import describe_os_error, is_leftover_tmp, prepare_output_dir as _prepare_output_dir
from ..common.save_load import load, save

LOCK_NAME = "run.lock"


class RunDirError(RunError):
    """The output folder cannot be used: it is a file, cannot be created or written, or another run holds it."""


class ResumeError(RunError):
    """``--resume`` / ``resume_epoch`` cannot continue without losing or overwriting a checkpoint."""


def output_dir_of(cfg):
    """``cfg.output_dir`` if set, else ``output/<model_name>``."""
    return cfg.output_dir or os.path.join("output", cfg.model_name)


def epoch_prefix(output_dir, model_name, epoch):
    """Path without suffix of the files for (1-based) ``epoch``."""
    return os.path.join(output_dir, f"{model_name}_epoch_{epoch:05d}")


def saves_epoch(epoch, save_interval, epochs):
    """Whether training writes a checkpoint after 0-based ``epoch``: ``epoch % save_interval == 0`` or the last
    epoch (PaddleVideo's rule; the files carry the 1-based number: 1, 1 + interval, ..., and ``epochs``)."""
    return epoch % save_interval == 0 or epoch + 1 == epochs


def best_path(output_dir, model_name):
    return os.path.join(output_dir, f"{model_name}_best.pdparams")


def prepare_output_dir(output_dir):
    """Create ``output_dir`` if needed and check it is writable.

    Raises:
        RunDirError: the path is a file, or the folder cannot be created or written.
    """
    return _prepare_output_dir(output_dir, "output_dir", RunDirError)


def save_epoch(output_dir, model_name, epoch, model_state, opt_state):
    """Write the ``.pdopt`` then the ``.pdparams`` of a finished (1-based) epoch; returns the path prefix.

    An older ``.pdparams`` of that epoch (a run that did not resume overwrites) is removed first, so at no
    moment does a new ``.pdopt`` sit beside old weights looking like a pair.
    """
    prefix = epoch_prefix(output_dir, model_name, epoch)
    if os.path.isfile(prefix + ".pdparams"):
        os.remove(prefix + ".pdparams")
    save(opt_state, prefix + ".pdopt")
    save(model_state, prefix + ".pdparams")
    return prefix


def epochs_on_disk(output_dir, model_name):
    """``{epoch: {'.pdparams', '.pdopt'} or a subset}`` of the epoch files in ``output_dir``."""
    pattern = re.compile(re.escape(model_name) + r"_epoch_(\d+)(\.pdparams|\.pdopt)$")
    found = {}
    for path in glob.glob(os.path.join(glob.escape(output_dir), f"{glob.escape(model_name)}_epoch_*")):
        match = pattern.match(os.path.basename(path))
        if match and os.path.isfile(path):
            found.setdefault(int(match.group(1)), set()).add(match.group(2))
    return found


def latest_epoch(output_dir, model_name):
    """The highest epoch with both files present, or ``None``."""
    complete = [e for e, suffixes in epochs_on_disk(output_dir, model_name).items() if len(suffixes) == 2]
    return max(complete) if complete else None


def resume_epoch(output_dir, model_name, wanted=0):
    """The (1-based) epoch a resumed run continues from, or 0 when there is nothing to resume.

    ``wanted`` (the config's ``resume_epoch``) names it; otherwise it is the latest epoch on disk. A latest
    epoch with only its ``.pdopt`` is a save that was interrupted: the one before it is used, with a warning.

    Raises:
        ResumeError: the epoch's ``.pdopt`` or ``.pdparams`` is missing, or files of later epochs exist that
            continuing would overwrite.
    """
    found = epochs_on_disk(output_dir, model_name)
    if wanted:
        _check_pair(output_dir, model_name, wanted, found.get(wanted, set()))
        later = sorted(e for e, suffixes in found.items() if e > wanted and ".pdparams" in suffixes)
        if later:
            raise ResumeError(f"resume_epoch {wanted}: '{output_dir}' already holds epoch(s) {_ranges(later)}, "
                              "which continuing from it would overwrite; move them away first, or resume from "
                              "the latest with --resume")
        return wanted
    if not found:
        get_logger().warning("--resume: no '%s_epoch_*' checkpoint in %s; starting from scratch", model_name,
                             output_dir)
        return 0
    latest = max(found)
    if found[latest] == {".pdopt"}:
        earlier = [e for e, suffixes in found.items() if e < latest and ".pdparams" in suffixes]
        previous = max(earlier) if earlier else 0
        get_logger().warning("--resume: the save of epoch %d was interrupted ('%s.pdopt' has no .pdparams); "
                             "continuing from %s", latest, epoch_prefix(output_dir, model_name, latest),
                             f"epoch {previous}" if previous else "scratch")
        if previous:
            _check_pair(output_dir, model_name, previous, found[previous])
        return previous
    _check_pair(output_dir, model_name, latest, found[latest])
    return latest


def _check_pair(output_dir, model_name, epoch, suffixes):
    prefix = epoch_prefix(output_dir, model_name, epoch)
    if ".pdparams" not in suffixes:
        raise ResumeError(f"resume: '{prefix}.pdparams' not found; check resume_epoch / output_dir")
    if ".pdopt" not in suffixes:
        raise ResumeError(f"resume: '{prefix}.pdparams' has no optimizer state '{prefix}.pdopt', so the run cannot "
                          f"continue exactly; put the .pdopt back, or start a new run from these weights with "
                          f"-w {prefix}.pdparams and another output_dir")


def _ranges(epochs):
    return f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"


def warn_if_overwriting(output_dir, model_name):
    """A run that does not resume warns when it will overwrite epoch checkpoints already in ``output_dir``."""
    found = sorted(e for e, suffixes in epochs_on_disk(output_dir, model_name).items() if ".pdparams" in suffixes)
    if found:
        get_logger().warning("'%s' already holds checkpoints of epoch(s) %s; this run starts from scratch and "
                             "overwrites them as it reaches those epochs (--resume continues instead)", output_dir,
                             _ranges(found))


def load_epoch(output_dir, model_name, epoch, trust_pickle=False):
    """``(model_state, opt_state)`` of ``epoch``; a PaddleVideo ``.pdopt`` (a bare optimizer state) is
    wrapped as ``{'optimizer': ..., 'epoch': epoch}``. Both files are read by ``save_load.load`` (plain data
    only unless ``trust_pickle``)."""
    prefix = epoch_prefix(output_dir, model_name, epoch)
    _check_pair(output_dir, model_name, epoch, {s for s in (".pdparams", ".pdopt") if os.path.isfile(prefix + s)})
    model_state = load(prefix + ".pdparams", trust_pickle=trust_pickle)
    opt_state = load(prefix + ".pdopt", trust_pickle=trust_pickle)
    if "optimizer" not in opt_state:
        opt_state = {"optimizer": opt_state, "epoch": epoch}
    return model_state, opt_state


def remove_leftover_tmp(output_dir):
    """Delete the temporary files of saves a killed run left in ``output_dir``; returns their names."""
    removed = []
    for name in sorted(os.listdir(output_dir)):
        path = os.path.join(output_dir, name)
        if is_leftover_tmp(name) and os.path.isfile(path):
            os.remove(path)
            removed.append(name)
    if removed:
        get_logger().warning("removed %d unfinished temporary file(s) of an interrupted save from %s: %s",
                             len(removed), output_dir, ", ".join(removed))
    return removed


def _rename_keys(state, mapping):
    """Rename optimizer-state keys ``<old>_<accumulator>`` (and ``master_weights[old]``) by ``mapping``."""
    olds = sorted(mapping, key=len, reverse=True)  # longest first: 'linear_10.w_0' before 'linear_1.w_0'
    out = {}
    for key, value in state.items():
        if key == "master_weights" and isinstance(value, dict):
            out[key] = {mapping.get(k, k): v for k, v in value.items()}
            continue
        for old in olds:
            if key.startswith(old + "_"):
                key = mapping[old] + key[len(old):]
                break
        out[key] = value
    return out


def portable_optimizer_state(optimizer, model):
    """``optimizer.state_dict()`` keyed by structural parameter names (``backbone.blocks.0.attn.qkv.weight``)
    instead of paddle's per-process names (``linear_12.w_0``), so it loads into any process's model."""
    return _rename_keys(optimizer.state_dict(), {p.name: n for n, p in model.named_parameters()})


def load_portable_optimizer_state(optimizer, model, state, portable=True):
    """Inverse of :func:`portable_optimizer_state`; ``portable=False`` loads a PaddleVideo ``.pdopt`` as is."""
    if portable:
        state = _rename_keys(state, {n: p.name for n, p in model.named_parameters()})
    optimizer.set_state_dict(state)


class RunLock:
    """``<output_dir>/run.lock``: one training run per output folder.

    The lock is a POSIX record lock (``fcntl.lockf``) on the file, so the kernel releases it when the process
    ends in any way, SIGKILL included; forked loader workers do not inherit it. The file records who holds it
    (pid, host, command, start time) for the message a second run gets. A lock file left by a run that was
    killed is not locked any more: the next run takes it over with a warning. Only rank 0 of a multi-process
    run locks (``enabled=False`` elsewhere). Used as a context manager; released (and the file removed) on
    exit, exceptions and interrupts included.
    """

    _held = set()  # lock paths this process holds: a POSIX lock never conflicts with its own process

    def __init__(self, output_dir, enabled=True):
        self.path = os.path.join(output_dir, LOCK_NAME)
        self.enabled = enabled
        self._fd = None

    def acquire(self):
        if not self.enabled:
            return self
        import fcntl

        real = os.path.realpath(self.path)
        if real in RunLock._held:
            raise RunDirError(f"'{self.path}' is already held by this process; one run per output_dir")
        for _ in range(5):
            fd = self._open()
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_info(fd)
                os.close(fd)
                raise RunDirError(f"output_dir '{os.path.dirname(self.path)}' is in use by another training run "
                                  f"({_describe_holder(holder)}); wait for it to end or set another output_dir; "
                                  f"if that process is gone, delete {self.path}") from None
            if _same_file(fd, self.path):  # not unlinked by a holder releasing it meanwhile
                break
            os.close(fd)
        else:
            raise RunDirError(f"cannot lock '{self.path}': it keeps being replaced; is another run starting?")
        previous = _read_info(fd)
        if previous:
            get_logger().warning("taking over the lock of a training run that is no longer running (%s)",
                                 _describe_holder(previous))
        self._write_info(fd)
        self._fd = fd
        RunLock._held.add(real)
        return self

    def _open(self):
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise RunDirError(f"cannot write in output_dir '{os.path.dirname(self.path)}' "
                              f"({describe_os_error(err)}); set output_dir to a folder you can write") from err

    def _write_info(self, fd):
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv),
                "started": datetime.datetime.now().isoformat(timespec="seconds")}
        data = (json.dumps(info) + "\n").encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError as err:
            os.close(fd)
            raise RunDirError(f"cannot write '{self.path}' ({describe_os_error(err)}); set output_dir to a "
                              "folder you can write") from err

    def release(self):
        if self._fd is None:
            return
        RunLock._held.discard(os.path.realpath(self.path))
        try:
            os.remove(self.path)  # while still locked: a newcomer that opened it retries on the new file
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_info(fd):
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {"pid": "?", "host": "?", "command": "(unreadable lock file)", "started": "?"}


def _describe_holder(info):
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}: "
            f"{info.get('command', '?')}")


def _same_file(fd, path):
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except OSError:
        return False
