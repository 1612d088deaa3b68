"""The HTTP side: FastAPI routes over a :class:`~.service.Service`, the API key, metrics per request, the page.

Routes (every one but ``/health`` needs the API key when one is set):

- ``GET /``: the page (``static/index.html``; its script and style under ``/static/``);
- ``POST /predict?top_k=K&attention=1``: a video upload (multipart, field ``file``) -> the top-k answer;
- ``POST /timeline?window_s=&stride_s=&smooth=&top_k=&cuts=``: a long video -> 202 and a job;
- ``GET /jobs/<id>?since=N``: the job's state, progress and windows (from N on); ``DELETE`` cancels it;
- ``GET /results/<token>/<file>``: an attention picture of an answer;
- ``GET /health``: 200 ``{"status": "ready"}`` once the model is loaded and warmed up, else 503;
- ``GET /info``: model, backend, what the service offers; ``GET /metrics``: Prometheus text;
- ``GET /docs``, ``/openapi.json``: FastAPI's OpenAPI page and schema; the page's Swagger UI files come from the
  ``swagger-ui-bundle`` package, served here (no CDN: it works offline, like the page at ``/``).

Every failure is one line of JSON, ``{"error": "..."}``, with its status (:mod:`.errors`).
"""

import base64
import hmac
import os
import time

from ..common.errors import first_line
from ..common.logger import get_logger
from . import timeline
from .errors import ClientError, Unavailable
from .metrics import CONTENT_TYPE
from .uploads import drain_body, receive_upload

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
OPEN_PATHS = ("/health",)
# Swagger UI's files for /docs, from the swagger-ui-bundle package, and their types.
DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon-32x32.png": "image/png"}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "the video"}}}}}}}
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}


def error_response(status, message, headers=None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": first_line(message, limit=500)}, status_code=status, headers=headers or None)


def key_matches(headers, api_key):
    """Whether the request carries ``api_key``: ``X-API-Key: KEY``, ``Authorization: Bearer KEY``, or HTTP Basic
    with KEY as the password (what a browser sends after its login prompt; any user name)."""
    offered = [headers.get("x-api-key", "")]
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        offered.append(value.strip())
    elif scheme.lower() == "basic":
        try:
            offered.append(base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2])
        except (ValueError, UnicodeDecodeError):
            pass
    expected = api_key.encode("utf-8")
    found = False
    for candidate in offered:  # compare every candidate in constant time, whatever matched before
        found |= hmac.compare_digest(candidate.encode("utf-8"), expected)
    return found


class ApiKeyMiddleware:
    """401 for every HTTP request but :data:`OPEN_PATHS` that lacks the key (see :func:`key_matches`).
    ``WWW-Authenticate: Basic`` makes a browser ask for it, so the page works behind a key too."""

    def __init__(self, app, api_key):
        self.app, self.api_key = app, api_key

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.api_key is None or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        from starlette.datastructures import Headers

        headers = Headers(scope=scope)
        if key_matches(headers, self.api_key):
            return await self.app(scope, receive, send)
        await drain_body(receive, headers)
        response = error_response(401, "missing or wrong API key; send it as 'X-API-Key: KEY' (or HTTP Basic, "
                                  "the key as password)", {"WWW-Authenticate": 'Basic realm="paddlevideo"'})
        await response(scope, receive, send)


class MetricsMiddleware:
    """Counts every request by route (its path template, ``other`` for unknown paths) and outcome, and times
    the answered ones. Requests refused before routing (401) are matched to their route here."""

    def __init__(self, app, metrics, routes=()):
        self.app, self.metrics, self.routes = app, metrics, list(routes)

    def route_name(self, scope):
        route = scope.get("route")
        if route is None:
            from starlette.routing import Match

            route = next((r for r in self.routes if r.matches(scope)[0] == Match.FULL), None)
        return getattr(route, "path", None) or "other"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.monotonic(), [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            name = self.route_name(scope)
            if name != "/metrics":
                self.metrics.observe_request(name, status[0], time.monotonic() - start)


def create_app(service):
    """The FastAPI application of ``service`` (started and stopped by the app's lifespan)."""
    import contextlib

    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException

    settings = service.settings
    log = get_logger()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.start()
        try:
            yield
        finally:
            service.close(timeout=min(30.0, settings.timeout_s))

    app = FastAPI(title="PaddleVideo TimeSformer service", version="1", docs_url=None, redoc_url=None,
                  description="Video classification with an exported TimeSformer. Upload a video to /predict "
                              "(multipart field 'file'); long videos to /timeline (a job). With an API key set, "
                              "send it as 'X-API-Key: KEY' on every route but /health.", lifespan=lifespan)

    # ------------------------------------------------------------------ errors: one JSON line each

    @app.exception_handler(ClientError)
    @app.exception_handler(Unavailable)
    async def known_error(request, err):
        return error_response(err.status, str(err), err.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, err):
        detail = err.detail if isinstance(err.detail, str) else "request failed"
        if err.status_code == 404:
            detail = f"no such route or resource: {request.method} {request.url.path}"
        return error_response(err.status_code, detail, getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, err):
        problems = err.errors()
        first = problems[0] if problems else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path"))
        return error_response(400, f"bad parameter '{where}': {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def bug(request, err):
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=err)
        return error_response(500, f"internal error ({type(err).__name__}); it is logged on the server")

    # ------------------------------------------------------------------ page

    static_files = {name for name in os.listdir(STATIC_DIR) if os.path.splitext(name)[1] in STATIC_TYPES}

    def static(name):
        if name not in static_files:  # only the package's own files, never a path from the request
            raise ClientError(f"no static file '{name}'", 404)
        return FileResponse(os.path.join(STATIC_DIR, name), media_type=STATIC_TYPES[os.path.splitext(name)[1]],
                            headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def page():
        return static("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str):
        return static(name)

    @app.get("/docs", include_in_schema=False)
    async def docs():
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    @app.get("/docs-assets/{name}", include_in_schema=False)
    async def docs_asset(name: str):
        if name not in DOCS_ASSETS:  # only the three files the page loads, never a path from the request
            raise ClientError(f"no static file '{name}'", 404)
        import swagger_ui_bundle

        return FileResponse(os.path.join(swagger_ui_bundle.swagger_ui_path, name), media_type=DOCS_ASSETS[name],
                            headers={"Cache-Control": "max-age=86400"})

    # ------------------------------------------------------------------ state

    @app.get("/health", summary="Ready once the model is loaded and warmed up (no API key needed)")
    async def health():
        status = service.status()
        return JSONResponse({"status": status}, status_code=200 if status == "ready" else 503,
                            headers=None if status == "ready" else {"Retry-After": "2"})

    @app.get("/info", summary="The model, backend and what this service offers")
    async def info():
        return service.info()

    @app.get("/metrics", summary="Prometheus metrics (text format)")
    async def metrics():
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    # ------------------------------------------------------------------ clips

    @app.post("/predict", summary="Classify one video (multipart field 'file')", openapi_extra=UPLOAD_BODY)
    async def predict(request: Request,
                      top_k: int = Query(None, ge=1, le=1000, description="classes in the answer (default --top_k)"),
                      attention: bool = Query(False, description="also draw the attention rollout (needs -w)")):
        started = time.monotonic()
        try:
            if attention and not service.clips.attention:
                raise ClientError("attention=1 needs the service started with -w WEIGHTS", 400)
            ticket = service.clips.admit()
        except (ClientError, Unavailable):
            await drain_body(request.receive, request.headers)
            raise
        try:
            upload = await receive_upload(request, service.uploads_dir, settings.max_upload_bytes,
                                          timeout_s=started + settings.timeout_s - time.monotonic())
            ticket.cleanups.append(upload.remove)
            uploaded = time.monotonic()
            answer = await service.clips.predict(ticket, upload, started, top_k or settings.top_k, attention)
        finally:
            ticket.close()
        answer["timings_ms"]["upload"] = 1000 * (uploaded - started)
        answer["timings_ms"]["total"] = 1000 * (time.monotonic() - started)
        return answer

    @app.get("/results/{token}/{name}", summary="An attention picture of an earlier answer")
    async def result_file(token: str, name: str):
        path = service.store.path(token, name)
        if path is None:
            raise ClientError(f"no result '{token}/{name}' (results are kept for the last {settings.max_results} "
                              "answers)", 404)
        from .results import FILES

        return FileResponse(path, media_type=FILES[name])

    # ------------------------------------------------------------------ long videos

    @app.post("/timeline", status_code=202, summary="Score a long video window by window, as a job",
              openapi_extra=UPLOAD_BODY)
    async def start_timeline(request: Request,
                             window_s: float = Query(None, gt=0, description="window length, seconds"),
                             stride_s: float = Query(None, gt=0, description="seconds between window starts"),
                             smooth: int = Query(None, ge=1, description="windows averaged before the top-1"),
                             top_k: int = Query(None, ge=1, le=1000, description="classes kept per window"),
                             cuts: str = Query(None, description="auto (default): detect hard cuts and leave the "
                                                                 "windows across them out of the smoothing; off")):
        if not service.timeline:
            await drain_body(request.receive, request.headers)
            raise ClientError(f"this service has no timeline support ({timeline.REASON})", 501)
        try:
            service.clips.check_ready()
            service.jobs.check_room()
            tl_settings = timeline.settings_from_request(
                {"window_s": window_s, "stride_s": stride_s, "smooth": smooth, "top_k": top_k, "cuts": cuts},
                settings.max_batch)
        except (Unavailable, ClientError):
            await drain_body(request.receive, request.headers)
            raise
        upload = await receive_upload(request, service.uploads_dir, settings.max_upload_bytes,
                                      timeout_s=settings.upload_timeout_s, flag="--upload_timeout_s")
        try:
            work = timeline.timeline_work(upload.path, upload.filename, service.cfg, service.clips.worker,
                                          service.label_names, tl_settings)
        except BaseException:
            upload.remove()
            raise
        job = service.jobs.submit("timeline", upload.filename, work, cleanup=upload.remove)
        return JSONResponse({"job": job.id, "url": f"/jobs/{job.id}", "state": job.state}, status_code=202,
                            headers={"Location": f"/jobs/{job.id}"})

    @app.get("/jobs/{job_id}", summary="A job's state, progress and windows (from index 'since' on)")
    async def job_status(job_id: str, since: int = Query(0, ge=0)):
        job = service.jobs.get(job_id)
        if job is None:
            raise ClientError(f"no job '{job_id}' (finished jobs are kept {settings.job_ttl_s:g} s, the last "
                              f"{settings.max_kept_jobs})", 404)
        return job.snapshot(since)

    @app.delete("/jobs/{job_id}", summary="Cancel a job")
    async def job_cancel(job_id: str):
        job = service.jobs.get(job_id)
        if job is None:
            raise ClientError(f"no job '{job_id}'", 404)
        job.cancel()
        return job.snapshot(len(job.items))

    app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics, routes=app.routes)  # outermost: counts 401s
    return app
