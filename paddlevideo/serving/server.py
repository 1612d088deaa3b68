"""uvicorn running the app, with its graceful shutdown wired to the tool's signal handling.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections, lets the requests in flight finish (at most
``timeout_s + 5`` seconds: a request never takes longer than its timeout), then the app's lifespan stops the
jobs, the model thread and the decoders. A second signal more than :data:`~paddlevideo.runtime.FORCE_AFTER_S`
after the first skips the waiting (as ``cli.run`` does for every tool). While serving, the signals go to uvicorn
through :func:`paddlevideo.runtime.signals_to`, so ``cli.run``'s handler (which would raise ``Interrupted`` in
the middle of the event loop) is set aside and put back afterwards, and a signal that stopped the server is
not raised again: the tool ends with 0.
"""

import socket
import time

from ..common.errors import ConfigError

GRACE_S = 5.0  # beyond the request timeout, for answers still being written


def bind(host, port):
    """A listening socket on ``host``:``port`` (0: any free port); :class:`ConfigError` naming both when the
    address cannot be used."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family = infos[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as err:
        raise ConfigError(f"cannot listen on --host {host} --port {port} ({err.strerror or err}); choose another "
                          "port (0 picks a free one) or host") from None


def make_server(app, settings):
    """A uvicorn ``Server`` for ``app`` whose signal handling is :func:`paddlevideo.runtime.signals_to`; it logs
    a line per request unless ``settings.no_access_log``."""
    import uvicorn

    from .. import runtime

    class GracefulServer(uvicorn.Server):
        stopped_by = None
        first_signal_at = None

        def capture_signals(self):
            return runtime.signals_to(self.handle_exit)

        def handle_exit(self, sig, frame):
            now = time.monotonic()
            if self.first_signal_at is None:
                self.stopped_by, self.first_signal_at = sig, now
                self.should_exit = True
            elif now - self.first_signal_at >= runtime.FORCE_AFTER_S:
                self.force_exit = True  # a repeated signal, later than a held key would send it: stop waiting

    # log_config=None: uvicorn leaves the process's logging set-up alone (its default applies a dictConfig);
    # the tool decides where the "uvicorn.error" and "uvicorn.access" lines go.
    config = uvicorn.Config(app, log_config=None, log_level=None, access_log=not settings.no_access_log,
                            lifespan="on", server_header=False,
                            timeout_graceful_shutdown=int(settings.timeout_s + GRACE_S))
    return GracefulServer(config)
