"""Every setting of the service in one place, with its default and its check.

The command line (``tools/serve.py``) fills :class:`ServeSettings` from its flags; tests build one directly.
Field names are the flags' names without ``--``, so a message can name the flag a user typed.
"""

import dataclasses
import ipaddress
import os
from typing import Optional

from ..utils.errors import ConfigError, InputError

API_KEY_ENV = "PADDLEVIDEO_API_KEY"  # read by tools/serve.py when --api_key is not given
LOCALHOST = "127.0.0.1"


@dataclasses.dataclass
class ServeSettings:
    """What the service runs and how much it takes at once.

    Model: ``config`` (its ``PIPELINE.test`` decodes every upload), ``model_file`` (+ ``params_file``) on
    ``backend`` in ``precision``, with ``cpu_threads`` threads (None: the service chooses), in a process of its
    own per ``model_process`` (:mod:`.model_process`); ``weights`` (dygraph ``.pdparams``) switches the
    attention pictures on.
    Network: ``host`` / ``port``; ``api_key`` (None: no key) guards every route but ``/health``.
    Load: at most ``queue_size`` clip requests are held at once (decoding, waiting or in the model; one more
    gets 503); the model thread batches up to ``max_batch`` clips, waiting at most ``max_wait_ms`` after the
    first one arrived; a request unanswered after ``timeout_s`` seconds gets 504 (408 when its upload has not
    even arrived by then; a long video for ``/timeline`` may take ``upload_timeout_s``); an upload over
    ``max_upload_mb`` MB gets 413. ``decode_workers`` threads decode uploads. Long videos: at most
    ``max_jobs`` timeline jobs run at once, ``max_kept_jobs`` finished ones are kept for ``GET /jobs/<id>``
    (the oldest go first), each for ``job_ttl_s`` seconds. ``max_results`` attention results are kept.
    """

    config: str
    model_file: str
    backend: str = "paddle"
    precision: str = "fp32"
    params_file: Optional[str] = None
    weights: Optional[str] = None
    label_file: Optional[str] = None
    overrides: tuple = ()
    host: str = LOCALHOST
    port: int = 8866
    api_key: Optional[str] = None
    max_batch: int = 4
    max_wait_ms: float = 10.0
    queue_size: int = 32
    timeout_s: float = 30.0
    upload_timeout_s: float = 300.0
    max_upload_mb: float = 200.0
    decode_workers: int = 2
    top_k: int = 5
    cpu_threads: Optional[int] = None
    model_process: str = "auto"
    max_jobs: int = 1
    max_kept_jobs: int = 16
    job_ttl_s: float = 3600.0
    max_results: int = 64

    @property
    def max_upload_bytes(self):
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_wait_s(self):
        return self.max_wait_ms / 1000.0

    def check(self):
        """Raise :class:`ConfigError` (a flag's value) or :class:`InputError` (a file) naming the flag; returns
        ``self``."""
        at_least = {"port": 0, "max_batch": 1, "queue_size": 1, "decode_workers": 1, "top_k": 1, "max_jobs": 1,
                    "max_kept_jobs": 1, "max_results": 1}
        for name, low in at_least.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"--{name} must be an integer >= {low}, got {value!r}")
        if self.port > 65535:
            raise ConfigError(f"--port must be at most 65535, got {self.port}")
        positive = {"timeout_s": self.timeout_s, "upload_timeout_s": self.upload_timeout_s,
                    "max_upload_mb": self.max_upload_mb, "job_ttl_s": self.job_ttl_s}
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"--{name} must be > 0, got {value!r}")
        if not self.max_wait_ms >= 0:
            raise ConfigError(f"--max_wait_ms must be >= 0, got {self.max_wait_ms!r}")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ConfigError(f"--cpu_threads must be >= 1, got {self.cpu_threads}")
        from .model_process import MODES

        if self.model_process not in MODES:
            raise ConfigError(f"--model_process must be one of {', '.join(MODES)}, got {self.model_process!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError(f"--api_key (or {API_KEY_ENV}) is empty; give a key or leave it unset")
        for flag, path in (("--config", self.config), ("--model_file", self.model_file),
                           ("--params_file", self.params_file), ("-w/--weights", self.weights),
                           ("--label_file", self.label_file)):
            if path is not None and not os.path.isfile(path):
                raise InputError(f"{flag} '{path}' not found; give an existing file")
        return self

    def exposed(self):
        """True when ``host`` is not a loopback address (the service is reachable from other machines)."""
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: only 'localhost' is known to be local
            return self.host != "localhost"
