"""Video data: decoders, pipeline operators, datasets and loaders (``builder``).

Import ``paddlevideo.loader.builder`` for ``build_pipeline``, ``build_dataset`` and ``build_dataloader``;
importing this package itself is light (no paddle, no decoders).
"""
