"""A config that lacks a section a task needs is one line naming the section, for every entry point; a garbage
``.pdopt`` is named before it is read; a log file that cannot be written warns once. (The engine keys' defaults,
filled in when a config is resolved: tests/test_config.py.)"""

import logging
import subprocess
import sys

import pytest

from conftest import K400_CONFIG, REPO
from paddlevideo.config import ConfigError, require


def _run(*args, timeout=240):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _one_line_error(proc, prog, *words):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and lines[-1].startswith(f"{prog}: error: "), proc.stderr[-2000:]
    for word in words:
        assert word in lines[-1], (word, lines[-1])


def test_require_names_the_missing_section_and_the_task():
    require({"MODEL": {"name": "x"}}, ("MODEL",), "training")
    with pytest.raises(ConfigError, match=r"no DATASET\.test, which --test needs"):
        require({"MODEL": {}, "DATASET": {}}, ("MODEL", "DATASET.test"), "--test")


def test_a_loader_without_a_batch_size_names_the_key_it_follows():
    """The test and validation batch sizes follow DATASET.batch_size: with neither, that is the key to add."""
    from paddlevideo.config import get_config
    from paddlevideo.tasks.loaders import build_loader

    cfg = get_config(str(K400_CONFIG), show=False)
    for key in ("batch_size", "test_batch_size", "valid_batch_size"):
        del cfg.DATASET[key]
    with pytest.raises(ConfigError, match=r"no DATASET\.batch_size, which --test needs"):
        build_loader(cfg, "test")


@pytest.mark.parametrize("args, words", [
    ([], ["MODEL", "training"]),
    (["--test", "-w", "model.pdparams"], ["MODEL", "--test"]),
])
def test_an_empty_config_is_one_line_naming_what_is_missing(tmp_path, args, words):
    config = tmp_path / "empty.yaml"
    config.write_text("")
    _one_line_error(_run("main.py", "-c", config, "-o", f"output_dir={tmp_path / 'out'}", *args), "main.py", *words)


def test_a_garbage_pdopt_is_named_as_an_optimizer_state_before_it_is_read(tmp_path):
    pdopt = tmp_path / "run_epoch_00001.pdopt"
    pdopt.write_bytes(b"not a paddle file")
    proc = _run("main.py", "-c", K400_CONFIG, "--test", "-w", pdopt, "-o", f"output_dir={tmp_path / 'out'}",
                "MODEL.backbone.pretrained=")
    _one_line_error(proc, "main.py", "optimizer state", "run_epoch_00001.pdparams")


def test_a_log_file_that_cannot_be_written_warns_once_and_the_console_keeps_logging(tmp_path, capsys):
    from paddlevideo.common.logger import setup_logger

    logger = setup_logger(str(tmp_path / "run.log"), "INFO", rank=0)
    file_handler = [h for h in logger.handlers if isinstance(h, logging.FileHandler)][0]

    class FullDisk:
        def write(self, text):
            raise OSError(27, "File too large")

        def flush(self):
            raise OSError(27, "File too large")

        def close(self):
            pass

    file_handler.stream = FullDisk()
    logger.info("first line after the disk filled")
    logger.info("second line")
    captured = capsys.readouterr()
    assert captured.err.count("cannot write the log file") == 1 and "Traceback" not in captured.err
    assert "File too large" in captured.err
    assert "first line after the disk filled" in captured.out and "second line" in captured.out
    assert file_handler not in logger.handlers
