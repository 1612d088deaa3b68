"""The model in a child process of its own, for runtimes that keep Python's GIL while they compute.

Paddle Inference's ``predictor.run()`` holds the GIL for the whole model call (its Python binding releases it
only in Ascend builds). In the service's process every other thread then stops for every batch: the event loop
that reads uploads and writes answers, the decoders' Python steps. The parts of the service run one after
another as if on one core, whatever the machine has (docs/serving.md, section 4, has the measurements).
:class:`ModelProcess` runs the predictor in a spawned child process instead: the model thread copies each batch
into shared memory, sends its shape through a pipe and waits for the logits on it (a blocked pipe read lets
the other threads run), so the model computes while the rest of the service goes on.

``--model_process auto`` (the default) uses it for the runtimes that hold the GIL (:data:`HOLDS_GIL`); ONNX
Runtime and OpenVINO release it while they compute and stay in the service's process.

Threads (:func:`start_model_process`): without ``--cpu_threads`` the model process gets every core, unless the
model is fast (a clip in under :data:`PROBE_BELOW_S` on all cores) and a second process with one core fewer
does at least as much per core (``cores - 1`` threads at most ``cores / (cores - 1)`` times slower): then that
one serves, and the core it leaves decodes uploads and answers HTTP. Serving a clip of such a model costs more
CPU than the model itself, and a model's OpenMP threads spin for 200 ms after every batch (``KMP_BLOCKTIME``) on
the cores the decoders need; a large model (ViT-B: seconds per clip) is never probed and keeps every core.

The child ignores SIGINT and SIGTERM (a Ctrl-C or a service manager signals the whole process group, and the
service must still answer the requests in flight): it ends when the service tells it to, or when its pipe
closes because the service is gone. It dying is fatal for the service (:class:`ModelProcessError`); a batch
the model refuses fails that batch only, as in the service's process.
"""

import multiprocessing as mp

import numpy as np

from ..common.errors import RunError, first_line

MODES = ("auto", "on", "off")
HOLDS_GIL = ("paddle",)  # backends whose model call keeps the GIL (ONNX Runtime and OpenVINO release it)
START_TIMEOUT_S = 600.0  # loading a large model and its runtime in a fresh process
PROBE_BELOW_S = 0.05  # models faster than this per clip (on all cores) are probed with one core fewer
PROBE_SECONDS = 0.5  # how long each probe times the model (at least 3 calls)
STOP_TIMEOUT_S = 10.0


def use_model_process(mode, backend):
    """Whether the model runs in a child process: ``on`` / ``off``, or ``auto``: when ``backend`` holds the GIL."""
    if mode not in MODES:
        raise ValueError(f"model_process must be one of {', '.join(MODES)}, got {mode!r}")
    return mode == "on" or (mode == "auto" and backend in HOLDS_GIL)


def fewer_threads_win(full_s, fewer_s, cores):
    """Whether the model on ``cores - 1`` threads (``fewer_s`` seconds per clip) should serve instead of the
    model on all ``cores`` (``full_s``): it is fast enough to be probed, and does at least as much per core."""
    return full_s < PROBE_BELOW_S and fewer_s * (cores - 1) <= full_s * cores


def start_model_process(model_file, backend, precision="fp32", params_file=None, cpu_threads=None,
                        probe_shape=None, cores=None, log=None):
    """The :class:`ModelProcess` that serves: with ``cpu_threads``, that many threads; otherwise every core,
    or one fewer when :func:`fewer_threads_win` on ``probe_shape`` batches (``[N, 3, V*T, H, W]``; None: no
    probe). ``log(message)`` hears the choice."""
    from ..common.cpu_features import available_cores

    cores = int(cores or available_cores())
    if cpu_threads is not None or probe_shape is None or cores < 2:
        return ModelProcess(model_file, backend, precision, params_file, cpu_threads)
    full = ModelProcess(model_file, backend, precision, params_file, None)  # the runtime's default: every core
    fewer = None
    try:
        full_s = full.seconds_per_clip(probe_shape)
        if full_s >= PROBE_BELOW_S:
            if log:
                log(f"model threads: {cores} of {cores} cores (a clip takes {1000 * full_s:.0f} ms; only models "
                    f"faster than {1000 * PROBE_BELOW_S:.0f} ms are tried on one core fewer)")
            return full
        fewer = ModelProcess(model_file, backend, precision, params_file, cores - 1)
        fewer_s = fewer.seconds_per_clip(probe_shape)
    except BaseException:
        for started in (fewer, full):
            if started is not None:
                started.close()
        raise
    keep, drop = (fewer, full) if fewer_threads_win(full_s, fewer_s, cores) else (full, fewer)
    drop.close()
    if log:
        log(f"model threads: {keep.cpu_threads or cores} of {cores} cores (a clip takes {1000 * full_s:.2f} ms on "
            f"{cores} threads, {1000 * fewer_s:.2f} ms on {cores - 1}; "
            + ("the core left over decodes uploads)" if keep is fewer else "every core is worth it)"))
    return keep


class ModelProcessError(RunError):
    """The model process died or cannot be reached: the service cannot go on (``fatal``)."""

    fatal = True


class ModelCallError(RuntimeError):
    """The model refused one batch (the exception the child saw, by name and first line): that batch fails."""


def _child_main(spec, conn):
    """The child: build the predictor, say so, then answer ``("run", shm name, shape)`` until ``("stop",)``
    or the pipe closes."""
    from ..runtime import configure_model_process, ignore_interrupts

    try:
        configure_model_process(spec["cpu_threads"])
        from ..deploy.predictor import build_predictor

        predictor = build_predictor(spec["model_file"], spec["backend"], spec["precision"],
                                    params_file=spec["params_file"], cpu_threads=spec["cpu_threads"])
    except BaseException as err:  # noqa: BLE001 - reported to the service, which stops with it
        conn.send(("failed", type(err).__name__, first_line(err)))
        return
    ignore_interrupts()  # after the runtime's import, which installs its own handlers
    conn.send(("ready", predictor.describe()))
    from multiprocessing import shared_memory

    shm = None
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return  # the service is gone
            if message[0] != "run":
                return
            _, name, shape = message
            if shm is None or shm.name != name:
                if shm is not None:
                    shm.close()
                shm = shared_memory.SharedMemory(name=name)
            imgs = np.ndarray(shape, np.float32, buffer=shm.buf)
            try:
                reply = ("ok", predictor(imgs))
            except Exception as err:  # noqa: BLE001 - this batch fails; the service goes on
                reply = ("error", type(err).__name__, first_line(err))
            del imgs  # no view may outlive the shared memory's mapping
            try:
                conn.send(reply)
            except (BrokenPipeError, OSError):
                return
    finally:
        if shm is not None:
            shm.close()


class ModelProcess:
    """``predictor(imgs [N, 3, V*T, H, W] float32) -> logits [N, C]``, computed in a child process (see the module
    docstring). Built (and the model loaded) in the calling thread; :meth:`close` ends the child. One caller at a
    time: the service's model thread."""

    def __init__(self, model_file, backend, precision="fp32", params_file=None, cpu_threads=None,
                 start_timeout_s=START_TIMEOUT_S):
        self.model_file, self.backend, self.precision = model_file, backend, precision
        self.cpu_threads = cpu_threads
        self._shm = None
        ctx = mp.get_context("spawn")  # never fork a process that runs threads
        self._conn, child_conn = ctx.Pipe(duplex=True)
        spec = {"model_file": model_file, "backend": backend, "precision": precision, "params_file": params_file,
                "cpu_threads": cpu_threads}
        self._process = ctx.Process(target=_child_main, args=(spec, child_conn), name="paddlevideo-model",
                                    daemon=True)
        self._process.start()
        child_conn.close()  # the child's end: once it exits, a read here ends instead of waiting for ever
        try:
            if not self._conn.poll(start_timeout_s):
                raise ModelProcessError(f"the model process did not load '{model_file}' within "
                                        f"{start_timeout_s:g} s")
            reply = self._receive()
        except BaseException:
            self.close()
            raise
        if reply[0] == "failed":
            self.close()
            from ..deploy.errors import PredictError

            user_error = reply[1] in ("InputError", "ConfigError", "PredictError")
            raise PredictError(reply[2] if user_error else f"{reply[1]}: {reply[2]}")
        self._description = reply[1]

    @property
    def pid(self):
        return self._process.pid

    def describe(self):
        return f"{self._description} (in model process {self._process.pid})"

    def seconds_per_clip(self, shape, seconds=PROBE_SECONDS):
        """The model's time per clip on random ``shape`` batches: a first call on one clip, then one on the
        batch, then the fastest of the calls made in ``seconds`` (at least 3). A model whose one clip takes over
        20 x :data:`PROBE_BELOW_S` is not timed further (that time is returned): a large model costs one clip
        at start-up."""
        import time

        imgs = np.random.RandomState(0).uniform(-2, 2, shape).astype(np.float32)
        tic = time.perf_counter()
        self(imgs[:1])
        first = time.perf_counter() - tic
        if first > 20 * PROBE_BELOW_S:
            return first
        self(imgs)
        best, calls, start = float("inf"), 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < seconds:
            tic = time.perf_counter()
            self(imgs)
            best = min(best, time.perf_counter() - tic)
            calls += 1
        return best / shape[0]

    def _receive(self):
        try:
            return self._conn.recv()
        except (EOFError, OSError) as err:
            raise self._ended(err) from None

    def _ended(self, err):
        """The :class:`ModelProcessError` for a pipe that broke with ``err``: the child has gone."""
        self._process.join(1.0)  # reaped, so its exit code is known
        code = self._process.exitcode
        return ModelProcessError("the model process ended" + (f" with exit code {code}" if code is not None else "")
                                 + f" ({type(err).__name__}); restart the service")

    def __call__(self, imgs):
        imgs = np.ascontiguousarray(imgs, np.float32)
        if self._shm is None or self._shm.size < imgs.nbytes:
            self._new_buffer(imgs.nbytes)
        view = np.ndarray(imgs.shape, np.float32, buffer=self._shm.buf)
        view[...] = imgs
        del view
        try:
            self._conn.send(("run", self._shm.name, tuple(int(d) for d in imgs.shape)))
        except (BrokenPipeError, OSError) as err:
            raise self._ended(err) from None
        reply = self._receive()
        if reply[0] == "ok":
            return np.asarray(reply[1], np.float32)
        raise ModelCallError(f"{reply[1]}: {reply[2]}")

    def _new_buffer(self, nbytes):
        from multiprocessing import shared_memory

        self._release_buffer()
        self._shm = shared_memory.SharedMemory(create=True, size=max(1, int(nbytes)))

    def _release_buffer(self):
        shm, self._shm = self._shm, None
        if shm is not None:
            shm.close()
            try:
                shm.unlink()
            except FileNotFoundError:
                pass

    def close(self, timeout=STOP_TIMEOUT_S):
        """End the child (it finishes the batch it holds), then free the shared memory. Again is fine."""
        process = self._process
        if process.is_alive():
            try:
                self._conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(5)
        self._conn.close()
        self._release_buffer()
