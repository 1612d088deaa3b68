"""The model behind HTTP: ``tools/serve.py`` and the page at ``/``.

Modules, each with one job:

- :mod:`.settings`: every knob of the service and its flag, checked once (:class:`~.settings.ServeSettings`);
- :mod:`.errors`: the HTTP status each request failure maps to;
- :mod:`.uploads`: a multipart upload streamed into a private temporary file, size-limited;
- :mod:`.batching`: the model thread, dynamic batching of concurrent clips, the bounded queue;
- :mod:`.pool`: daemon worker threads (a stuck decode cannot keep a stopped service alive);
- :mod:`.clips`: one clip request end to end (decode with the config's test pipeline, batch, top-k);
- :mod:`.explain`, :mod:`.results`: the attention rollout pictures for ``-w WEIGHTS`` and where they are kept;
- :mod:`.jobs`, :mod:`.timeline`: long work as jobs with progress; the timeline of a long video as one;
- :mod:`.service`: the parts of one running service, built from its settings;
- :mod:`.metrics`: the Prometheus metrics;
- :mod:`.app`: the FastAPI routes, the API key, the page's static files;
- :mod:`.server`: uvicorn with its graceful shutdown.

Nothing here changes the process when imported (FastAPI and uvicorn are imported by the modules that use them).
"""
