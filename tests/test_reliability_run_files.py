"""Output folders: one run per folder (lock), leftovers of killed saves removed, the user's file mode, a full disk or
read-only folder as one line with the last good checkpoint intact, and a resume that never destroys a checkpoint."""

import hashlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from engine_helpers import capture_logs  # noqa: F401  (a fixture)
from engine_helpers import (DEMO_CONFIG, REPO, data_overrides, demo_cfg, error_line, load_params, make_data,
                            max_abs_diff, run_main)
from paddlevideo.tasks import run_files
from paddlevideo.tasks.run_files import ResumeError, RunDirError, RunLock
from paddlevideo.tasks.train import train_model
from paddlevideo.common.save_load import CheckpointWriteError, save

ONE_UPDATE_EPOCHS = ["save_interval=1", "DATASET.batch_size=4", "GRADIENT_ACCUMULATION.global_batch_size=4"]
NAME = "TimeSformer_demo"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    make_data(folder, num_train=8, num_val=4)
    return folder


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


_HOLDER = textwrap.dedent("""
    import sys, time
    from paddlevideo.tasks.run_files import RunLock
    RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def holder(tmp_path):
    """A separate process holding the lock of ``tmp_path / 'out'``; yields the Popen."""
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "hold_lock.py"
    script.write_text(_HOLDER)
    proc = subprocess.Popen([sys.executable, str(script), str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_second_run_on_a_locked_folder_names_the_holder(holder, tmp_path):
    with pytest.raises(RunDirError) as err:
        RunLock(str(tmp_path / "out")).acquire()
    message = str(err.value)
    assert f"pid {holder.pid} on {socket.gethostname()}" in message and "hold_lock.py" in message
    assert "started 20" in message and "in use by another training run" in message
    assert RunLock(str(tmp_path / "out"), enabled=False).acquire() is not None  # ranks > 0 never lock


def test_a_stale_lock_of_a_killed_run_is_taken_over(holder, tmp_path, capture_logs):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock_file = tmp_path / "out" / run_files.LOCK_NAME
    assert lock_file.is_file()  # SIGKILL leaves the file
    with RunLock(str(tmp_path / "out")):
        assert f'"pid": {os.getpid()}' in lock_file.read_text()
        warning = [r.getMessage() for r in capture_logs.records if "no longer running" in r.getMessage()]
        assert warning and f"pid {holder.pid}" in warning[0]
    assert not lock_file.exists()


def test_lock_is_released_on_errors_and_interrupts(tmp_path):
    lock_file = tmp_path / run_files.LOCK_NAME
    for exc in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(exc):
            with RunLock(str(tmp_path)):
                assert lock_file.is_file()
                raise exc()
        assert not lock_file.exists()
    with RunLock(str(tmp_path)):
        with pytest.raises(RunDirError, match="already held by this process"):
            RunLock(str(tmp_path)).acquire()


def test_cli_second_training_on_the_same_folder_refuses(data_dir, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, str(REPO / "main.py"), "-c", str(DEMO_CONFIG), "-o",
                              *data_overrides(data_dir), f"output_dir={out}", "epochs=500", "log_interval=1",
                              *ONE_UPDATE_EPOCHS], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in first.stdout:
            if "train step:" in line:
                break
        log_before = (out / "train.log").read_text()
        second = run_main(["-c", str(DEMO_CONFIG), "-o", *data_overrides(data_dir), f"output_dir={out}",
                           "epochs=1", *ONE_UPDATE_EPOCHS], timeout=240)
        line = error_line(second)
        assert f"is in use by another training run (pid {first.pid} on" in line and "epochs=500" in line
        # The refused run wrote nothing into the running one's log (not even its config dump).
        log_after = (out / "train.log").read_text()
        assert log_after.startswith(log_before) and "epochs: 1\n" not in log_after[len(log_before):]
        assert log_before.count("epochs: 500") == 1
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert not (out / run_files.LOCK_NAME).exists()


def test_leftover_tmp_files_are_removed_and_reported(data_dir, tmp_path, capture_logs):
    out = tmp_path / "out"
    out.mkdir()
    leftover = out / f"{NAME}_epoch_00001.pdparams.ab3d_9xZ.tmp"
    leftover.write_bytes(b"half a checkpoint")
    curves = out / ".training_curves.12345.partial.png"  # a picture a killed run was drawing
    curves.write_bytes(b"half a png")
    mine = out / "notes.tmp"  # not a name our saves use: kept
    mine.write_text("user file")
    train_model(demo_cfg(data_dir, out, "epochs=1", *ONE_UPDATE_EPOCHS), seed=1)
    assert not leftover.exists() and not curves.exists() and mine.read_text() == "user file"
    assert any("ab3d_9xZ.tmp" in r.getMessage() and "interrupted save" in r.getMessage()
               for r in capture_logs.records)
    assert not [p for p in os.listdir(out) if p.endswith(".tmp") and p != "notes.tmp"]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_checkpoints_get_the_users_file_mode(tmp_path, mask):
    old = os.umask(mask)
    try:
        save({"w": np.ones(3, np.float32)}, str(tmp_path / "a.pdparams"))
        run_files.save_epoch(str(tmp_path), "M", 1, {"w": np.ones(3, np.float32)}, {"epoch": 1})
        plain = tmp_path / "plain"
        plain.write_text("")  # what open() makes under this umask
    finally:
        os.umask(old)
    want = stat.S_IMODE(plain.stat().st_mode)
    assert want == 0o666 & ~mask
    for name in ("a.pdparams", "M_epoch_00001.pdparams", "M_epoch_00001.pdopt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want, name


_FILL = textwrap.dedent("""
    import resource, sys, numpy as np
    from paddlevideo.common.save_load import save
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
    save({"w": np.zeros(1_000_000, np.float32)}, sys.argv[1])
""")


def test_disk_full_while_saving_is_one_error_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "m.pdparams"
    save({"w": np.arange(5, dtype=np.float32)}, str(target))
    before = digest(target)
    proc = subprocess.run([sys.executable, "-c", _FILL, str(target)], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("paddlevideo.common.save_load.CheckpointWriteError: cannot write")
    assert str(target) in last and "File too large" in last
    assert digest(target) == before and os.listdir(tmp_path) == ["m.pdparams"]


def _limit_file_size(limit):
    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_cli_disk_full_mid_run_keeps_the_last_good_epoch(data_dir, tmp_path):
    out = tmp_path / "out"
    common = ["-c", str(DEMO_CONFIG), "-o", *data_overrides(data_dir), f"output_dir={out}", *ONE_UPDATE_EPOCHS]
    assert run_main(common + ["epochs=1"], timeout=240).returncode == 0
    good = {p.name: digest(p) for p in out.glob("*.pd*")}
    # the checkpoints of this model are > 600 kB: a 300 kB file-size limit lets the log grow, not a save
    proc = run_main(["--resume"] + common + ["epochs=2"], timeout=240, preexec_fn=_limit_file_size(300_000))
    line = error_line(proc)
    assert f"cannot write '{out / NAME}_epoch_00002.pdopt' (File too large)" in line
    assert {p.name: digest(p) for p in out.glob("*.pd*")} == good  # epoch 1 intact, no epoch 2 file
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")] and not (out / run_files.LOCK_NAME).exists()


def _can_mount():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True).returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs root and mount namespaces (unshare -m) for a "
                                                          "small tmpfs; the RLIMIT_FSIZE tests cover the rest")


def _in_tmpfs(mount_point, options, command, copy_to):
    """Run ``command`` with a tmpfs mounted at ``mount_point`` in a private mount namespace; the folder's
    contents are copied to ``copy_to`` before the namespace (and the tmpfs) goes away."""
    import shlex

    script = (f"mount -t tmpfs -o {options} tmpfs {shlex.quote(str(mount_point))} || exit 99; "
              f"{' '.join(shlex.quote(str(c)) for c in command)}; rc=$?; "
              f"cp -a {shlex.quote(str(mount_point))}/. {shlex.quote(str(copy_to))}/; exit $rc")
    return subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@needs_mount
def test_cli_full_tmpfs_keeps_the_last_good_epoch(data_dir, tmp_path):
    mount_point, copy = tmp_path / "disk", tmp_path / "copy"
    mount_point.mkdir()
    copy.mkdir()
    # 2.5 MB: the log and epoch 1 (~1.9 MB) fit; epoch 2's optimizer state (~1.3 MB) does not
    proc = _in_tmpfs(mount_point, "size=2500k", [sys.executable, REPO / "main.py", "-c", DEMO_CONFIG, "-o",
                                                 *data_overrides(data_dir), f"output_dir={mount_point / 'run'}",
                                                 "epochs=2", *ONE_UPDATE_EPOCHS], copy)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("main.py: error: cannot write") and \
        "No space left on device" in proc.stderr and "Traceback" not in proc.stderr
    run = copy / "run"
    assert sorted(p.name for p in run.iterdir() if p.suffix in (".pdparams", ".pdopt", ".tmp")) == \
        [f"{NAME}_epoch_00001.pdopt", f"{NAME}_epoch_00001.pdparams"]
    load_params(run / f"{NAME}_epoch_00001.pdparams")  # complete and loadable


@needs_mount
def test_cli_read_only_output_folder_is_one_line(data_dir, tmp_path):
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    proc = _in_tmpfs(mount_point, "ro,size=1m", [sys.executable, REPO / "main.py", "-c", DEMO_CONFIG, "-o",
                                                 *data_overrides(data_dir), f"output_dir={mount_point / 'run'}",
                                                 "epochs=1"], tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("main.py: error:") and str(mount_point / "run") in last and "Read-only" in last
    assert "Traceback" not in proc.stderr


def test_read_only_folder_for_a_non_root_user(data_dir, tmp_path):
    """Permission bits (root ignores them, so this runs the check as an unprivileged user where possible)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.geteuid() == 0:
            with pytest.raises(CheckpointWriteError, match="Permission denied"):
                _as_nobody(lambda: save({"w": np.ones(2, np.float32)}, str(folder / "x.pdparams")))
        else:
            with pytest.raises(CheckpointWriteError, match=f"cannot write '{folder}/x.pdparams' .*Permission denied"):
                save({"w": np.ones(2, np.float32)}, str(folder / "x.pdparams"))
    finally:
        folder.chmod(0o755)
    assert os.listdir(folder) == []


def _as_nobody(fn):
    """Run ``fn`` in a forked child with uid/gid 65534; re-raise its exception here."""
    import pickle

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            fn()
            result = None
        except BaseException as err:  # noqa: BLE001 - carried to the parent
            result = err
        with os.fdopen(write, "wb") as f:
            pickle.dump(result, f)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        result = pickle.load(f)
    os.waitpid(pid, 0)
    if result is not None:
        raise result


def test_output_path_that_is_a_file(data_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(RunDirError, match="is a file, not a folder"):
        train_model(demo_cfg(data_dir, blocker, "epochs=1", *ONE_UPDATE_EPOCHS))
    proc = run_main(["-c", str(DEMO_CONFIG), "-o", *data_overrides(data_dir), f"output_dir={blocker}", "epochs=1"],
                    timeout=240)
    line = error_line(proc)
    assert str(blocker) in line and "is a file, not a folder" in line
    assert blocker.read_text() == "not a folder"


# ---- resume that never destroys

@pytest.fixture
def two_epochs(data_dir, tmp_path):
    """An output folder with complete epochs 1 and 2."""
    out = tmp_path / "run"
    train_model(demo_cfg(data_dir, out, "epochs=2", *ONE_UPDATE_EPOCHS), seed=2)
    return out


def test_resume_with_the_latest_pdopt_missing_stops(data_dir, two_epochs):
    (two_epochs / f"{NAME}_epoch_00002.pdopt").unlink()
    weights = two_epochs / f"{NAME}_epoch_00002.pdparams"
    before = digest(weights)
    with pytest.raises(ResumeError, match=r"epoch_00002.pdparams' has no optimizer state .*epoch_00002.pdopt"):
        train_model(demo_cfg(data_dir, two_epochs, "epochs=3", *ONE_UPDATE_EPOCHS), seed=2, resume=True)
    assert digest(weights) == before  # no silent fall-back to epoch 1 that would overwrite epoch 2
    assert not (two_epochs / f"{NAME}_epoch_00003.pdparams").exists()


def test_resume_with_the_only_pdopt_missing_stops(data_dir, tmp_path):
    out = tmp_path / "run"
    train_model(demo_cfg(data_dir, out, "epochs=1", *ONE_UPDATE_EPOCHS), seed=2)
    (out / f"{NAME}_epoch_00001.pdopt").unlink()
    before = digest(out / f"{NAME}_epoch_00001.pdparams")
    proc = run_main(["--resume", "-c", str(DEMO_CONFIG), "-o", *data_overrides(data_dir), f"output_dir={out}",
                     "epochs=2", *ONE_UPDATE_EPOCHS], timeout=240)
    assert "has no optimizer state" in error_line(proc) and "epoch:" not in proc.stdout
    assert digest(out / f"{NAME}_epoch_00001.pdparams") == before


def test_resume_epoch_never_overwrites_later_epochs(data_dir, two_epochs):
    before = digest(two_epochs / f"{NAME}_epoch_00002.pdparams")
    with pytest.raises(ResumeError, match="already holds epoch.s. 2"):
        train_model(demo_cfg(data_dir, two_epochs, "epochs=3", "resume_epoch=1", *ONE_UPDATE_EPOCHS), seed=2)
    assert digest(two_epochs / f"{NAME}_epoch_00002.pdparams") == before


def test_interrupted_save_resumes_from_the_last_complete_epoch(data_dir, tmp_path, capture_logs):
    """A lone .pdopt (killed between the two writes of an epoch) is an interrupted save: resume continues from
    the epoch before, and the run ends exactly as an uninterrupted one."""
    common = ["epochs=3", *ONE_UPDATE_EPOCHS]
    train_model(demo_cfg(data_dir, tmp_path / "full", *common), seed=5)
    cut = tmp_path / "cut"
    train_model(demo_cfg(data_dir, cut, *common), seed=5, max_iters=4)  # epochs 1 and 2 (2 updates each)
    shutil.copy(tmp_path / "full" / f"{NAME}_epoch_00003.pdopt", cut)  # the half-done save of epoch 3
    result = train_model(demo_cfg(data_dir, cut, *common), seed=5, resume=True)
    assert result["epochs_done"] == 3
    assert any("save of epoch 3 was interrupted" in r.getMessage() and "continuing from epoch 2" in r.getMessage()
               for r in capture_logs.records)
    name = f"{NAME}_epoch_00003.pdparams"
    assert max_abs_diff(load_params(tmp_path / "full" / name), load_params(cut / name)) < 1e-6


def test_a_fresh_run_warns_before_overwriting(data_dir, two_epochs, capture_logs):
    train_model(demo_cfg(data_dir, two_epochs, "epochs=1", *ONE_UPDATE_EPOCHS), seed=3)
    assert any("already holds checkpoints of epoch(s) 1-2" in r.getMessage() for r in capture_logs.records)


@pytest.mark.slow
def test_two_processes_end_when_rank0_finds_the_folder_locked(data_dir, holder, tmp_path):
    """Only rank 0 locks: when it refuses, rank 1 (already on its way to the first collective) must not wait."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
           str(tmp_path / "logs"), str(REPO / "main.py"), "-c", str(DEMO_CONFIG), "-o", *data_overrides(data_dir),
           f"output_dir={out}", "epochs=1", "DATASET.batch_size=2", "GRADIENT_ACCUMULATION.global_batch_size=4"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode != 0
    assert f"is in use by another training run (pid {holder.pid} on" in proc.stdout + proc.stderr
    assert holder.poll() is None and (out / run_files.LOCK_NAME).is_file()  # the holder's lock is untouched
