#!/usr/bin/env python
"""Serve an exported TimeSformer over HTTP, with a web page at ``/``.

Examples::

    python tools/serve.py -c configs/recognition/timesformer/timesformer_k400_videos.yaml \\
        --model_file inference/TimeSformer/TimeSformer.pdmodel
    python tools/serve.py -c CONFIG --model_file inference/TimeSformer/TimeSformer.pdmodel \\
        -w output/TimeSformer/TimeSformer_best.pdparams            # answers can carry the attention pictures
    PADDLEVIDEO_API_KEY=secret python tools/serve.py -c CONFIG --model_file M --host 0.0.0.0

Then ``curl -F file=@video.mp4 http://127.0.0.1:8866/predict``, or open http://127.0.0.1:8866/ in a browser.
The API, the page and the behaviour under load: docs/serving.md. SIGTERM or Ctrl-C: the requests in flight
are answered, new connections are refused, and the tool exits 0.
"""

import os
import sys

import _bootstrap  # noqa: F401  (tools/_bootstrap.py: this clone on sys.path unless installed; quiet warnings)

from paddlevideo.runtime import guard_start_up  # noqa: E402  (first: a Ctrl-C in the imports below ends cleanly)

guard_start_up("serve.py", __name__)
import argparse  # noqa: E402
import logging  # noqa: E402
import tempfile  # noqa: E402

from paddlevideo.deploy.predictor import BACKENDS, PRECISIONS  # noqa: E402
from paddlevideo.serving.model_process import MODES as MODEL_PROCESS_MODES  # noqa: E402
from paddlevideo.serving.settings import API_KEY_ENV, LOCALHOST, ServeSettings  # noqa: E402
from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.utils.logger import log_to_stderr  # noqa: E402

PROG = "serve.py"
DEFAULTS = ServeSettings(config="", model_file="")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description="Serve an exported TimeSformer over HTTP (API and page).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    model = parser.add_argument_group("model")
    model.add_argument("-c", "--config", required=True,
                       help="the model's config: its PIPELINE.test turns every upload into a clip (as tools/predict.py)")
    model.add_argument("--model_file", required=True,
                       help="the exported model: .pdmodel or PIR .json (paddle, openvino), .onnx (onnxruntime, "
                            "openvino) or OpenVINO .xml")
    model.add_argument("--params_file", default=None, help="its weights, .pdiparams (default: next to --model_file)")
    model.add_argument("--backend", choices=BACKENDS, default=None,
                       help="runtime (default: from the model file and --precision, as tools/predict.py)")
    model.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="CPU precision (bf16 / int8 with --backend openvino; see docs/deploy.md)")
    model.add_argument("-w", "--weights", default=None,
                       help="the dygraph .pdparams the model was exported from: answers can then carry the "
                            "attention rollout pictures (?attention=1)")
    model.add_argument("--label_file", default=None,
                       help="class names, 'id name' per line (default: the list the config names, if any)")
    model.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value (repeatable)")
    model.add_argument("--top_k", type=int, default=DEFAULTS.top_k, help="classes per answer unless ?top_k= says")
    model.add_argument("--cpu_threads", type=int, default=None,
                       help="the model's CPU math threads (default: all cores; a model in its own process that "
                            "computes a clip in under 50 ms may get one core fewer, docs/serving.md section 4)")
    model.add_argument("--model_process", choices=MODEL_PROCESS_MODES, default=DEFAULTS.model_process,
                       help="run the model in a child process of its own: auto = for the backends whose model call "
                            "holds Python's GIL (paddle), so uploads and decoding go on while the model computes")

    net = parser.add_argument_group("network")
    net.add_argument("--host", default=LOCALHOST,
                     help="address to listen on; 0.0.0.0 (or ::) makes the service reachable from other machines")
    net.add_argument("--port", type=int, default=DEFAULTS.port, help="port (0: any free port, printed at start)")
    net.add_argument("--api_key", default=None,
                     help=f"require this key on every route but /health (default: ${API_KEY_ENV}, if set; the "
                          "variable keeps the key out of the process list)")
    net.add_argument("--no_access_log", action="store_true", help="do not log one line per request")

    load = parser.add_argument_group("load")
    load.add_argument("--max_batch", type=int, default=DEFAULTS.max_batch, help="clips per model call, at most")
    load.add_argument("--max_wait_ms", type=float, default=DEFAULTS.max_wait_ms,
                      help="how long the first clip of a batch waits for others to join it")
    load.add_argument("--queue_size", type=int, default=DEFAULTS.queue_size,
                      help="clip requests held at once (uploading, decoding, waiting, in the model); "
                           "more get 503 with Retry-After")
    load.add_argument("--timeout_s", type=float, default=DEFAULTS.timeout_s,
                      help="a request without an answer after this many seconds gets 504")
    load.add_argument("--upload_timeout_s", type=float, default=DEFAULTS.upload_timeout_s,
                      help="a /timeline upload (a long video) not received after this many seconds gets 408; a "
                           "/predict upload has --timeout_s in all")
    load.add_argument("--max_upload_mb", type=float, default=DEFAULTS.max_upload_mb,
                      help="largest upload in MB (larger: 413)")
    load.add_argument("--decode_workers", type=int, default=DEFAULTS.decode_workers,
                      help="threads decoding uploads")
    load.add_argument("--max_jobs", type=int, default=DEFAULTS.max_jobs,
                      help="timeline jobs running at once (as many more may wait)")
    add_debug_flag(parser)
    return parser.parse_args(argv)


def settings_from_args(args):
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    return ServeSettings(config=args.config, model_file=args.model_file, backend=args.backend,
                         precision=args.precision, params_file=args.params_file, weights=args.weights,
                         label_file=args.label_file, overrides=tuple(args.override), host=args.host, port=args.port,
                         api_key=api_key, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                         queue_size=args.queue_size, timeout_s=args.timeout_s,
                         upload_timeout_s=args.upload_timeout_s, max_upload_mb=args.max_upload_mb,
                         decode_workers=args.decode_workers, top_k=args.top_k, cpu_threads=args.cpu_threads,
                         model_process=args.model_process, max_jobs=args.max_jobs)


def _resolve_backend(settings, logger):
    """The backend and the precision a CPU computes, as tools/predict.py resolves them."""
    from paddlevideo.deploy.predictor import default_backend, resolve_cpu_precision

    if settings.backend is None:
        settings.backend = default_backend(settings.model_file, settings.precision)
    if settings.backend == "onnxruntime" and not settings.model_file.endswith(".onnx"):
        from paddlevideo.utils.errors import ConfigError

        raise ConfigError(f"--backend onnxruntime needs an .onnx --model_file, got '{settings.model_file}' "
                          "(tools/export_model.py --onnx writes one)")
    settings.precision, note = resolve_cpu_precision(settings.backend, settings.precision)
    if note:
        logger.warning("%s", note)


def _prepare_runtimes(backend, weights):
    """Import the runtimes in the main thread before serving: Paddle replaces the SIGTERM handler when it is
    first imported (``cli.run`` puts its own back), which must not happen later in the model thread, where it
    would take SIGTERM away from the server's graceful shutdown. With ``-w``, the fused CPU kernels of the
    dygraph model are built (or loaded from the cache) here too: their first build redirects the process's
    output while the compiler runs, which must not happen while the server logs."""
    import paddle  # noqa: F401

    if backend == "onnxruntime":
        import onnxruntime  # noqa: F401
    elif backend == "openvino":
        import openvino  # noqa: F401
    if weights:
        from paddlevideo.modeling.layers.cpu_kernels import cpu_kernels

        cpu_kernels()  # None (with a warning) when they cannot be built: Paddle's kernels run instead


def _log_server_lines(access_log):
    """uvicorn's own lines as the project's (``LEVEL: message`` on stderr); with the access log, one line per
    request on stdout, as uvicorn prints them by default."""
    formatter = logging.Formatter("%(levelname)s: %(message)s")
    for name, stream, on in (("uvicorn.error", sys.stderr, True), ("uvicorn.access", sys.stdout, access_log)):
        logger = logging.getLogger(name)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger.handlers = [handler] if on else []
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main(argv=None):
    args = parse_args(argv)
    logger = log_to_stderr(logging.INFO)
    _log_server_lines(not args.no_access_log)
    settings = settings_from_args(args).check()
    from paddlevideo.runtime import configure_cpu

    configure_cpu(settings.cpu_threads, malloc=False)  # a long-running service keeps glibc trimming
    _resolve_backend(settings, logger)
    _prepare_runtimes(settings.backend, settings.weights)
    if settings.exposed() and settings.api_key is None:
        logger.warning("--host %s makes the service reachable from other machines and no API key is set "
                       "(--api_key or %s)", settings.host, API_KEY_ENV)
    from paddlevideo.serving.app import create_app
    from paddlevideo.serving.server import bind, make_server
    from paddlevideo.serving.service import Service

    with tempfile.TemporaryDirectory(prefix="paddlevideo-serve-") as work_dir:
        server = None

        def stop_on_failure(err):  # the model could not be loaded or checked: end the tool with that error
            if server is not None:
                server.should_exit = True

        service = Service(settings, work_dir, on_fatal=stop_on_failure)
        sock = bind(settings.host, settings.port)
        host, port = sock.getsockname()[:2]
        server = make_server(create_app(service), settings, access_log=not args.no_access_log)
        shown = f"[{host}]" if ":" in host else host
        print(f"{PROG}: serving {os.path.basename(settings.model_file)} ({settings.backend}, {settings.precision}) "
              f"on http://{shown}:{port}/ (GET /health says when the model is ready)", file=sys.stderr, flush=True)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
            service.close()  # done by the app's shutdown already, unless a forced stop skipped it
        failure = service.clips.failure or service.clips.worker.failure
    if failure is not None:
        raise failure
    if server.stopped_by is not None:
        import signal

        logger.info("stopped by %s: requests in flight were answered", signal.Signals(server.stopped_by).name)
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main))
