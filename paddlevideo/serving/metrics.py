"""The service's Prometheus metrics, in a registry of its own (nothing global is touched).

Names (``GET /metrics``, Prometheus' text format):

- ``paddlevideo_requests_total{route, outcome}``: finished requests; ``outcome`` is ``ok`` or what went
  wrong (``bad_request``, ``unauthorized``, ``not_found``, ``upload_timeout``, ``too_large``, ``not_video``,
  ``undecodable``, ``busy``, ``timeout``, ``error``, ...), one word per HTTP status (:data:`OUTCOMES`);
- ``paddlevideo_request_latency_seconds{route}``: arrival to answer of the requests answered ``ok``;
- ``paddlevideo_queue_depth``: clips waiting for the model now; ``paddlevideo_requests_in_flight``: clip
  requests held (uploading, decoding, waiting or in the model), at most ``--queue_size``;
- ``paddlevideo_batch_size``: clips per model call; ``paddlevideo_model_seconds``: seconds per model call;
- ``paddlevideo_ready``: 1 once the model is loaded and warmed up; ``paddlevideo_jobs{state}``: timeline jobs.
"""

OUTCOMES = {200: "ok", 202: "ok", 400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "bad_method",
            408: "upload_timeout",
            413: "too_large", 415: "not_video", 422: "undecodable", 429: "busy", 500: "error", 501: "unsupported",
            503: "busy", 504: "timeout"}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MODEL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def outcome(status):
    """The ``outcome`` label of an HTTP status (``client_error`` / ``error`` for codes not listed)."""
    return OUTCOMES.get(int(status), "client_error" if 400 <= int(status) < 500 else "error")


class ServiceMetrics:
    """The metrics of one service; ``queue_depth``, ``in_flight``, ``jobs`` and ``ready`` are callables read
    when the metrics are scraped."""

    def __init__(self, max_batch, queue_depth=lambda: 0, in_flight=lambda: 0, jobs=lambda: {}, ready=lambda: False):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("paddlevideo_requests", "Finished requests by route and outcome",
                                ("route", "outcome"), registry=self.registry)
        self.latency = Histogram("paddlevideo_request_latency_seconds", "Arrival to answer of requests answered ok",
                                 ("route",), buckets=LATENCY_BUCKETS, registry=self.registry)
        Gauge("paddlevideo_queue_depth", "Clips waiting for the model", registry=self.registry
              ).set_function(queue_depth)
        Gauge("paddlevideo_requests_in_flight", "Clip requests held (uploading, decoding, waiting, in the model)",
              registry=self.registry).set_function(in_flight)
        sizes = tuple(sorted({1, 2, 4, 8, 16, 32, int(max_batch)} & set(range(1, int(max_batch) + 1))))
        self.batch_size = Histogram("paddlevideo_batch_size", "Clips per model call", buckets=sizes,
                                    registry=self.registry)
        self.model_seconds = Histogram("paddlevideo_model_seconds", "Seconds per model call", buckets=MODEL_BUCKETS,
                                       registry=self.registry)
        Gauge("paddlevideo_ready", "1 once the model is loaded and warmed up", registry=self.registry
              ).set_function(lambda: 1.0 if ready() else 0.0)
        self.jobs = Gauge("paddlevideo_jobs", "Timeline jobs by state", ("state",), registry=self.registry)
        self._jobs = jobs

    def observe_request(self, route, status, seconds):
        self.requests.labels(route=route, outcome=outcome(status)).inc()
        if outcome(status) == "ok":
            self.latency.labels(route=route).observe(seconds)

    def observe_batch(self, size, seconds):
        self.batch_size.observe(size)
        self.model_seconds.observe(seconds)

    def render(self):
        """The text exposition (bytes)."""
        from prometheus_client import generate_latest

        for state, count in self._jobs().items():
            self.jobs.labels(state=state).set(count)
        return generate_latest(self.registry)
