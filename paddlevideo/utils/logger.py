"""One logger for the whole project.

Library code calls ``get_logger()`` and logs; only entry points (``main.py``, ``tools/``)
call ``setup_logger`` to attach console / file handlers. Non-zero ranks of a
multi-process run log warnings and errors only, so the console shows one copy of each line.
"""

import logging
import os
import sys

LOGGER_NAME = "paddlevideo"
_FORMAT = "[%(asctime)s] %(levelname)s: %(message)s"
_DATE_FORMAT = "%Y/%m/%d %H:%M:%S"


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
        rank: process rank; defaults to ``PADDLE_TRAINER_ID`` (set by paddle.distributed.launch).
    Returns:
        the configured project logger.
    """
    if rank is None:
        rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
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
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        file_handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
    return logger
