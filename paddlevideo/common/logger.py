"""One logger for the whole project.

Library code calls ``get_logger()`` and logs; only entry points (``main.py``, ``tools/``)
call ``setup_logger`` to attach console / file handlers. Non-zero ranks of a
multi-process run log warnings and errors only, so the console shows one copy of each line.
"""

import logging
import os
import sys

from .errors import OutputError
from .files import describe_os_error

LOGGER_NAME = "paddlevideo"
_FORMAT = "[%(asctime)s] %(levelname)s: %(message)s"
_DATE_FORMAT = "%Y/%m/%d %H:%M:%S"


class LogFileError(OutputError):
    """The log file cannot be created (its folder is a file, read-only, or not creatable)."""


def get_logger(name=LOGGER_NAME):
    """Return the project logger (or a child of it, e.g. ``paddlevideo.loader``)."""
    if name != LOGGER_NAME and not name.startswith(LOGGER_NAME + "."):
        name = f"{LOGGER_NAME}.{name}"
    return logging.getLogger(name)


def setup_logger(log_file=None, level="INFO", rank=None):
    """Attach a console handler (and a file handler when ``log_file`` is given).

    Args:
        log_file: path of a log file; its folder is created. Only rank 0 writes it.
        level: logging level name, e.g. ``"INFO"``.
        rank: process rank; defaults to the launcher's (``utils.dist.get_rank``).
    Returns:
        the configured project logger.
    Raises:
        LogFileError: ``log_file`` cannot be created; the message names the path and the reason.
    """
    if rank is None:
        from .dist import get_rank

        rank = get_rank()
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level if rank == 0 else "WARNING")
    logger.propagate = False
    formatter = logging.Formatter(_FORMAT, _DATE_FORMAT)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(formatter)
    logger.addHandler(console)
    if log_file and rank == 0:
        file_handler = _file_handler(log_file)
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
    return logger


def _file_handler(log_file):
    folder = os.path.dirname(os.path.abspath(log_file))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise LogFileError(f"the folder of the log file '{log_file}' is a file, not a folder; set output_dir to a "
                           "folder")
    try:
        os.makedirs(folder, exist_ok=True)
        return _LogFileHandler(log_file, mode="a", encoding="utf-8")
    except OSError as err:
        reason = describe_os_error(err)
        raise LogFileError(f"cannot write the log file '{log_file}' ({reason}); set output_dir to a folder "
                           "you can write") from None


def log_to_stderr(level=logging.WARNING):
    """For tools whose stdout carries results (predictions, JSON): the project's log lines go to stderr,
    ``LEVEL: message``, from ``level`` up. Returns the logger."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


class _LogFileHandler(logging.FileHandler):
    """A log file that, when it can no longer be written (disk full, file-size limit), says so once on
    stderr and stops writing, instead of printing logging's traceback for every later record; the console
    keeps every line, and the run's own file writes (checkpoints) report their failures themselves."""

    def handleError(self, record):
        err = sys.exc_info()[1]
        if not isinstance(err, OSError):
            super().handleError(record)
            return
        reason = describe_os_error(err)
        sys.stderr.write(f"warning: cannot write the log file '{self.baseFilename}' ({reason}); "
                         "logging to the console only from here on\n")
        logging.getLogger(LOGGER_NAME).removeHandler(self)
        try:
            self.close()
        except OSError:
            pass
