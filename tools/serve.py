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

from paddlevideo.serving.settings import API_KEY_ENV, add_flags, from_flags  # noqa: E402
from paddlevideo.cli import add_debug_flag, run  # noqa: E402
from paddlevideo.common.logger import log_to_stderr  # noqa: E402

PROG = "serve.py"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description="Serve an exported TimeSformer over HTTP (API and page).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_flags(parser)
    add_debug_flag(parser)
    return parser.parse_args(argv)


def settings_from_args(args):
    settings = from_flags(args)
    if settings.api_key is None:
        settings.api_key = os.environ.get(API_KEY_ENV)
    return settings


def _resolve_backend(settings, logger):
    """The backend and the precision a CPU computes, as tools/predict.py resolves them."""
    from paddlevideo.deploy.predictor import default_backend, resolve_cpu_precision

    if settings.backend is None:
        settings.backend = default_backend(settings.model_file, settings.precision)
    if settings.backend == "onnxruntime" and not settings.model_file.endswith(".onnx"):
        from paddlevideo.common.errors import ConfigError

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
    settings = settings_from_args(args).check()
    _log_server_lines(not settings.no_access_log)
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
        server = make_server(create_app(service), settings)
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
