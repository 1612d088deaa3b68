"""Every setting of the service in one place: its type, default, help text and check.

Each field of :class:`ServeSettings` carries its help text and its section of ``tools/serve.py --help``
(:data:`FLAG_GROUPS`): :func:`add_flags` makes the tool's flags from the fields, :func:`from_flags` the settings
from the parsed flags; tests build one directly. Field names are the flags' names without ``--``, so a message can
name the flag a user typed.
"""

import dataclasses
import functools
import ipaddress
import os
import typing
from typing import Optional

from ..common.errors import ConfigError, InputError
from ..deploy.predictor import BACKENDS, PRECISIONS
from .model_process import MODES as MODEL_PROCESS_MODES

API_KEY_ENV = "PADDLEVIDEO_API_KEY"  # read by tools/serve.py when --api_key is not given
LOCALHOST = "127.0.0.1"
FLAG_GROUPS = ("model", "network", "load")  # the sections of tools/serve.py --help, in this order


def _setting(group, default=dataclasses.MISSING, help="", *, flags=None, **flag_options):
    """A field of :class:`ServeSettings`: its ``default`` (none: required), what it does (``help``) and the
    section of ``--help`` its flag is in (``group``, one of :data:`FLAG_GROUPS`; None: no flag, only code sets
    it). The flag is ``--<name>`` unless ``flags`` names its option strings; ``flag_options`` are more
    ``add_argument`` keywords (``choices``, ``action``, ...; ``flag_default``: the flag's own default)."""
    if "flag_default" in flag_options:
        flag_options["default"] = flag_options.pop("flag_default")
    return dataclasses.field(default=default,
                             metadata={"group": group, "help": help, "flags": flags, "options": flag_options})


_model = functools.partial(_setting, "model")
_network = functools.partial(_setting, "network")
_load = functools.partial(_setting, "load")
_no_flag = functools.partial(_setting, None)


@dataclasses.dataclass
class ServeSettings:
    """What the service runs and how much it takes at once.

    Model: the exported ``model_file`` (+ ``params_file``) on ``backend`` in ``precision``, its uploads decoded
    by ``config``'s ``PIPELINE.test``, in a process of its own per ``model_process`` (:mod:`.model_process`);
    ``weights`` switches the attention pictures on. Network: ``api_key`` (None:
    no key) guards every route but ``/health``. Load: ``queue_size`` clip requests at once (decoding, waiting or in
    the model), batched by the model thread up to ``max_batch`` clips; each has ``timeout_s`` seconds, and an
    upload at most ``max_upload_mb`` MB. Long videos run as timeline jobs. Each field's help says the rest.
    """

    config: str = _model(flags=("-c", "--config"), help="the model's config: its PIPELINE.test turns every upload "
                                                         "into a clip (as tools/predict.py)")
    model_file: str = _model(help="the exported model: .pdmodel or PIR .json (paddle, openvino), .onnx "
                                  "(onnxruntime, openvino) or OpenVINO .xml")
    params_file: Optional[str] = _model(None, "its weights, .pdiparams (default: next to --model_file)")
    # tools/serve.py without --backend picks it from the model file; settings built in code run Paddle Inference
    backend: str = _model("paddle", "runtime (default: from the model file and --precision, as tools/predict.py)",
                          choices=BACKENDS, flag_default=None)
    precision: str = _model("fp32", "CPU precision (bf16 / int8 with --backend openvino; see docs/deploy.md)",
                            choices=PRECISIONS)
    weights: Optional[str] = _model(None, "the dygraph .pdparams the model was exported from: answers can then "
                                          "carry the attention rollout pictures (?attention=1)",
                                    flags=("-w", "--weights"))
    label_file: Optional[str] = _model(None, "class names, 'id name' per line (default: the list the config "
                                             "names, if any)")
    overrides: tuple = _model((), "override a config value (repeatable)", flags=("-o", "--override"),
                              action="append", flag_default=[], metavar="KEY=VALUE")
    top_k: int = _model(5, "classes per answer unless ?top_k= says")
    cpu_threads: Optional[int] = _model(None, "the model's CPU math threads (default: all cores; a model in its own "
                                              "process that computes a clip in under 50 ms may get one core fewer, "
                                              "docs/serving.md section 4)")
    model_process: str = _model("auto", "run the model in a child process of its own: auto = for the backends whose "
                                        "model call holds Python's GIL (paddle), so uploads and decoding go on while "
                                        "the model computes", choices=MODEL_PROCESS_MODES)

    host: str = _network(LOCALHOST, "address to listen on; 0.0.0.0 (or ::) makes the service reachable from other "
                                    "machines")
    port: int = _network(8866, "port (0: any free port, printed at start)")
    api_key: Optional[str] = _network(None, f"require this key on every route but /health (default: ${API_KEY_ENV}, "
                                            "if set; the variable keeps the key out of the process list)")
    no_access_log: bool = _network(False, "do not log one line per request", action="store_true")

    max_batch: int = _load(4, "clips per model call, at most")
    max_wait_ms: float = _load(10.0, "how long the first clip of a batch waits for others to join it")
    queue_size: int = _load(32, "clip requests held at once (uploading, decoding, waiting, in the model); more get "
                                "503 with Retry-After")
    timeout_s: float = _load(30.0, "a request without an answer after this many seconds gets 504")
    upload_timeout_s: float = _load(300.0, "a /timeline upload (a long video) not received after this many seconds "
                                           "gets 408; a /predict upload has --timeout_s in all")
    max_upload_mb: float = _load(200.0, "largest upload in MB (larger: 413)")
    decode_workers: int = _load(2, "threads decoding uploads")
    max_jobs: int = _load(1, "timeline jobs running at once (as many more may wait)")
    max_kept_jobs: int = _no_flag(16, "finished timeline jobs kept for GET /jobs/<id> (the oldest go first)")
    job_ttl_s: float = _no_flag(3600.0, "seconds a finished timeline job is kept")
    max_results: int = _no_flag(64, "attention results kept")

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
        if self.model_process not in MODEL_PROCESS_MODES:
            raise ConfigError(f"--model_process must be one of {', '.join(MODEL_PROCESS_MODES)}, "
                              f"got {self.model_process!r}")
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


def _flag_type(annotation):
    """``int`` / ``float`` for a field of that type (``Optional`` too); None (strings) otherwise."""
    kinds = [kind for kind in typing.get_args(annotation) or (annotation,) if kind is not type(None)]
    return kinds[0] if kinds[0] in (int, float) else None


def add_flags(parser):
    """Add a flag for every setting that has one to ``parser`` (``argparse``), in the groups :data:`FLAG_GROUPS`."""
    groups = {name: parser.add_argument_group(name) for name in FLAG_GROUPS}
    for field in dataclasses.fields(ServeSettings):
        meta = field.metadata
        if meta["group"] is None:
            continue
        options = {"dest": field.name, "help": meta["help"]}
        if field.default is dataclasses.MISSING:
            options["required"] = True
        else:
            options.update(default=field.default, type=_flag_type(field.type))
        options.update(meta["options"])
        if options.get("type") is None:
            options.pop("type", None)  # strings as given; a store_true flag takes no type
        groups[meta["group"]].add_argument(*(meta["flags"] or ("--" + field.name,)), **options)


def from_flags(args):
    """:class:`ServeSettings` from the flags :func:`add_flags` added, parsed (the rest take their defaults)."""
    values = {}
    for field in dataclasses.fields(ServeSettings):
        if field.metadata["group"] is not None:
            value = getattr(args, field.name)
            values[field.name] = tuple(value) if field.type is tuple else value
    return ServeSettings(**values)
