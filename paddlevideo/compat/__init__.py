"""Workarounds for bugs of a Paddle version, one module each, headed by the version and the test that reproduces
the bug, so that an upgrade deletes them file by file:

- :mod:`.old_ir_ops`: tracing a ``.pdmodel`` through APIs that go straight to C++ (Paddle 3.3);
- :mod:`.onednn_reshape_fuse`: Paddle Inference's oneDNN predictor creation (Paddle 3.3.1, CPU);
- :mod:`.dataloader_thread`: a DataLoader thread that dies leaves the main thread waiting (Paddle 3.3).
"""
