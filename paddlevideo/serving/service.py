"""Everything one running service holds, built from its :class:`~.settings.ServeSettings`.

:class:`Service` reads the config, builds the test pipeline and the label names, checks the exported model's
input against the pipeline (before the port opens), and wires the parts together: the clip path
(:class:`~.clips.ClipService`: decoders, the model thread), the attention explainer (``-w``), the timeline
jobs, the result store and the metrics. The model itself is loaded in the model thread once the service
runs, so ``/health`` can say "loading" meanwhile.
"""

import os

from ..common.logger import get_logger
from . import timeline
from .clips import ClipService
from .jobs import JobManager
from .metrics import ServiceMetrics
from .results import ResultStore


class Service:
    """The parts of one service; ``work_dir`` (an existing, private folder) holds its uploads and results.
    ``on_fatal(err)`` is called once if the model cannot be loaded or checked."""

    def __init__(self, settings, work_dir, on_fatal=None):
        from ..deploy.model_input import check_model_input, declared_input_shape, pipeline_input_shape
        from ..loader.builder import build_pipeline
        from ..loader.labels import read_label_names
        from ..config import get_config

        self.settings, self.work_dir, self.on_fatal = settings, work_dir, on_fatal
        self.cfg = get_config(settings.config, list(settings.overrides), show=False)
        self.pipeline = build_pipeline(self.cfg.PIPELINE.test, "PIPELINE.test")
        self.label_names = read_label_names(self.cfg, settings.label_file, instead="answering with class ids only")
        check_model_input(settings.model_file, self.cfg)
        made = pipeline_input_shape(self.cfg)
        declared = declared_input_shape(settings.model_file) or made
        self.input_shape = [a if a is not None else b for a, b in zip(declared, made)]
        self.uploads_dir = os.path.join(work_dir, "uploads")
        os.makedirs(self.uploads_dir, exist_ok=True)
        self.store = ResultStore(os.path.join(work_dir, "results"), settings.max_results)
        self.jobs = JobManager(settings.max_jobs, settings.max_kept_jobs, settings.job_ttl_s)
        self.timeline = timeline.available()
        explainer = None
        if settings.weights:
            from .explain import AttentionExplainer

            explainer = AttentionExplainer(self.cfg, settings.weights, self.pipeline, self.store)
        self.metrics = ServiceMetrics(settings.max_batch, queue_depth=lambda: self.clips.worker.depth,
                                      in_flight=lambda: self.clips.in_flight, jobs=self.jobs.counts,
                                      ready=lambda: self.ready)
        self.clips = ClipService(settings, self.cfg, self.pipeline, self.label_names, self._load_predictor,
                                 self.input_shape, explainer=explainer, metrics=self.metrics, on_fatal=self._fatal)

    def _load_predictor(self):
        from ..deploy.predictor import build_predictor
        from .model_process import start_model_process, use_model_process

        s = self.settings
        if use_model_process(s.model_process, s.backend):
            clip = self.input_shape[1:]
            probe = None if any(d is None for d in clip) else [s.max_batch, *clip]
            predictor = start_model_process(s.model_file, s.backend, s.precision, params_file=s.params_file,
                                            cpu_threads=s.cpu_threads, probe_shape=probe,
                                            log=get_logger().info)
        else:
            predictor = build_predictor(s.model_file, s.backend, s.precision, params_file=s.params_file,
                                        cpu_threads=s.cpu_threads)
        get_logger().info("model loaded: %s", predictor.describe())
        return predictor

    def _fatal(self, err):
        if self.on_fatal is not None:
            self.on_fatal(err)

    def start(self):
        self.clips.start()
        return self

    @property
    def ready(self):
        return self.clips.ready

    def status(self):
        """``loading`` | ``ready`` | ``stopping`` | ``failed``."""
        if self.clips.failure is not None or self.clips.worker.failure is not None:
            return "failed"
        if self.clips.stopping or self.jobs.closing:
            return "stopping"
        return "ready" if self.ready else "loading"

    def info(self):
        """What the page and clients may know about the service (``GET /info``)."""
        s = self.settings
        return {"model": os.path.basename(s.model_file), "config": os.path.basename(s.config), "backend": s.backend,
                "precision": s.precision, "status": self.status(), "attention": self.clips.attention,
                "timeline": self.timeline, "labels": self.label_names is not None, "top_k": s.top_k,
                "max_batch": s.max_batch, "max_upload_mb": s.max_upload_mb, "timeout_s": s.timeout_s,
                "input_shape": self.input_shape}

    def close(self, timeout=10.0):
        """Stop the jobs, then the model thread and the decoders (the uploads still held are removed by
        their requests; the work folder belongs to the caller)."""
        self.clips.stopping = True
        self.jobs.close(timeout)
        self.clips.close(timeout)
