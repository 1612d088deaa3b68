"""The one wrapper every command-line entry point runs through (``main.py`` and ``tools/*.py``).

Usage: at the top of a tool, before every import but ``os`` and ``sys`` (and the ``sys.path`` line a tool
under ``tools/`` needs)::

    from paddlevideo.runtime import guard_start_up  # noqa: E402

    guard_start_up("my_tool.py", __name__)        # a Ctrl-C during the imports below ends cleanly too

and at the bottom::

    def main(argv=None):
        parser = argparse.ArgumentParser(prog=PROG, ...)
        add_debug_flag(parser)
        args = parser.parse_args(argv)
        ...                       # raise a UserError for anything the user can fix
        return 0

    if __name__ == "__main__":
        sys.exit(run(PROG, main))

What the user sees, whatever the tool (exit code in brackets):

- success: the tool's own output [0];
- a :class:`~paddlevideo.common.errors.UserError` (bad config, list, file, flag value):
  ``<prog>: error: <message>``, one line [1];
- a bad flag: argparse's usage line and ``<prog>: error: ...`` [2];
- a file-system error (disk full, read-only, no permission, a file where a folder belongs, ...):
  ``<prog>: error: '<path>': <what>; <what to do>`` [1]; out of memory: one line too [1];
- Ctrl-C or SIGTERM, at any moment: ``<prog>: interrupted`` [130 or 143];
- a bug (any other exception): ``<prog>: error: unexpected <Type>: <message> (a bug: its traceback is in
  <file>; rerun with --debug to print it, and please report it)`` [1];
- stdout closed early by its reader (``| head``): nothing [141].

``--debug`` (every tool has it) or ``PADDLEVIDEO_DEBUG=1`` also prints the traceback, before the line.

Bugs: the user gets the same single line as for any error, so the console stays readable, but the
traceback is never lost: it is written to the run's log file (``train.log`` etc., when the tool has one)
or else to a file in the temporary folder, and the line names that file, asks to rerun with ``--debug``
and to report it. Nobody has to rerun a long training just to see where it failed.

Interrupts: :func:`run` installs :func:`paddlevideo.runtime.install_signal_guard` (the one home of
process-wide changes; how an interrupt is delivered, never inside a finalizer, is described there). The
first SIGINT or SIGTERM raises :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread's own code,
so ``finally`` blocks and context managers clean up (loaders stop, temporary files go). The guard also
records the signal, so an interrupt that Paddle's C++ code wraps into another exception type (a Ctrl-C
landing in a custom PyLayer's backward surfaces as a ``RuntimeError``/``ValueError`` carrying the
``KeyboardInterrupt``) still ends as ``interrupted`` with 130 / 143. Checkpoints are written atomically, so
even a forced stop leaves every checkpoint loadable. (The Python interpreter's own start-up, before the
tool's first line runs, is the one moment not covered.)

The file helpers a tool also needs (``prepare_output_dir``, ``write_atomically``, ``output_name``,
``os_error_reason``) live in :mod:`paddlevideo.common.files`, because the library below the tools uses them too;
this module keeps what is about starting and ending a tool.
"""

import datetime
import logging
import os
import signal
import sys
import tempfile
import traceback

from . import runtime
from .runtime import FORCE_AFTER_S, Interrupted, print_line as _print_line  # noqa: F401 - the tools' names
from .common import dist
from .common.errors import UserError
from .common.files import os_error_message

DEBUG_ENV = "PADDLEVIDEO_DEBUG"
DEBUG_FLAG = "--debug"
EXIT_ERROR = 1
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
_MAX_MESSAGE = 2000  # characters of a message kept on the one line


def add_debug_flag(parser):
    """Add ``--debug`` to an ``argparse`` parser (:func:`run` reads it from the command line itself)."""
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help=f"on an error, also print the full traceback (or set {DEBUG_ENV}=1)")
    return parser


TRUST_PICKLE_FLAG = "--trust-pickle"


def add_trust_pickle_flag(parser, what="the .pdparams / .pdopt files this command reads"):
    """Add ``--trust-pickle`` (as ``tools/convert_checkpoint.py`` has it): read ``what`` with full unpickling."""
    parser.add_argument(TRUST_PICKLE_FLAG, dest="trust_pickle", action="store_true",
                        help=f"allow full unpickling of {what} (runs code from the file; only for files you "
                             "trust). Without it a checkpoint may hold plain data only (docs/reliability.md)")
    return parser


def debug_requested(argv=None):
    """True when ``--debug`` is among the arguments or ``PADDLEVIDEO_DEBUG`` is set to a true value."""
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ.get(DEBUG_ENV, "").strip().lower()
    return DEBUG_FLAG in argv or env not in ("", "0", "false", "no", "off")


def error_message(err):
    """The one-line message for a user-facing error, or ``None`` when ``err`` is a bug."""
    if isinstance(err, UserError):
        if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
            text = err.args[0]  # str(KeyError) would quote it
        else:
            text = str(err)
        return _one_line(text) or type(err).__name__
    if isinstance(err, FileNotFoundError) and err.errno is None and str(err):
        # raised by project code with its own message (``FileNotFoundError("list file 'x' not found ...")``)
        return _one_line(str(err))
    if isinstance(err, MemoryError):
        detail = _one_line(str(err))
        return ("out of memory" + (f" ({detail})" if detail else "")
                + "; use a smaller batch_size, fewer num_workers or a smaller model")
    return os_error_message(err)


def _lost_peer_message(err):
    """A collective of a multi-process run failed because another process stopped (interrupted, or failed
    with its own error): say so instead of calling it a bug of this one."""
    if dist.get_world_size() < 2 or not isinstance(err, (RuntimeError, OSError)):
        return None
    text = str(err)
    if "gloo" not in text.lower() and "nccl" not in text.lower():
        return None
    return (f"another process of this distributed run stopped, so a collective operation failed here "
            f"({_one_line(text, first_only=True)[:300]}); the reason is in the first failing worker's log")


def _one_line(text, first_only=False):
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    text = (lines[0] if first_only and lines else " ".join(lines))
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + " ..."


def print_error(prog, message):
    """``<prog>: error: message`` on stderr, for a tool that goes on (a folder with one bad video) and ends
    with a non-zero exit code of its own."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ reporting

def _log_file_paths():
    """Files the project logger writes to (the run's ``train.log`` etc.)."""
    logger = logging.getLogger("paddlevideo")
    return [h.baseFilename for h in logger.handlers if isinstance(h, logging.FileHandler)]


def _save_traceback(prog, err):
    """Append the traceback to the run's log file, or write it to a temporary file; returns the path."""
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    stamp = datetime.datetime.now().strftime("%Y/%m/%d %H:%M:%S")
    for path in _log_file_paths():
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"[{stamp}] ERROR: {prog} stopped on an unexpected error:\n{text}")
            return path
        except OSError:
            continue
    try:
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", delete=False,
                                             prefix=f"paddlevideo-{os.path.splitext(prog)[0]}-",
                                             suffix=".traceback.txt")
        with handle:
            handle.write(f"{prog} {' '.join(sys.argv[1:])}\n{text}")
        return handle.name
    except OSError:
        return None


def _log_error_line(line):
    """Put the final line into the run's log file too, so a log shows why the run ended."""
    stamp = datetime.datetime.now().strftime("%Y/%m/%d %H:%M:%S")
    for path in _log_file_paths():
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"[{stamp}] ERROR: {line}\n")
        except OSError:
            pass


def _close_progress_bars():
    """End the line of a progress bar left open by the failure, so the final line starts a line of its own."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", None) or []):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the error being reported
            pass


def _flush_logs():
    _close_progress_bars()
    for handler in logging.getLogger("paddlevideo").handlers:
        try:
            handler.flush()
        except (OSError, ValueError):
            pass


def _report(prog, err, guard, debug, message=None):
    """Print what ended the run and return its exit code (``message``: the line for ``err``, if known)."""
    _flush_logs()
    if guard.signum is not None or isinstance(err, KeyboardInterrupt):
        if debug:
            traceback.print_exception(type(err), err, err.__traceback__)
        _print_line(f"{prog}: interrupted")
        signum = guard.signum or getattr(err, "signum", signal.SIGINT)
        return 128 + signum
    if isinstance(err, BrokenPipeError) and err.filename is None:
        # stdout was closed by the reader (``| head``): stop quietly, as shell tools do.
        runtime.discard_stdout()
        return EXIT_BROKEN_PIPE
    message = message or error_message(err) or _lost_peer_message(err)
    if debug:
        traceback.print_exception(type(err), err, err.__traceback__)
    if message is not None:
        line = f"{prog}: error: {message}"
        _log_error_line(line)
        _print_line(line)
        return EXIT_ERROR
    summary = _one_line(str(err), first_only=True)
    summary = f"{type(err).__name__}: {summary}" if summary else type(err).__name__
    if debug:
        _print_line(f"{prog}: error: unexpected {summary} (a bug: the traceback is above; please report it)")
        return EXIT_ERROR
    saved = _save_traceback(prog, err)
    where = f"its traceback is in {saved}" if saved else "no traceback could be saved"
    line = (f"{prog}: error: unexpected {summary} (a bug: {where}; rerun with {DEBUG_FLAG} to print it, "
            "and please report it)")
    _log_error_line(line)
    _print_line(line)
    return EXIT_ERROR


_ACTIVE_GUARDS = []  # the signal guards of the runs in progress (innermost last)


def interrupt_requested():
    """True once SIGINT or SIGTERM has reached the :func:`run` in progress: long loops poll this at safe
    points (between batches) and stop cleanly, whether or not the signal also raised :class:`Interrupted`.
    :func:`run` then reports ``interrupted`` with 130 / 143 when ``main`` returns."""
    return any(guard.signum is not None for guard in _ACTIVE_GUARDS)


def run(prog, main, argv=None):
    """Run ``main(argv)`` as the command-line program ``prog``; return the process exit code.

    ``main`` returns an ``int`` exit code (``None`` or any other value means 0) or raises. ``SystemExit``
    with a number (argparse's ``--help`` and usage errors) passes through unchanged; ``sys.exit("message")``
    is reported like a UserError. See the module docstring for what each kind of failure prints.

    Called without ``argv`` (``sys.exit(run(PROG, main))``: the program itself), a signal that arrives after
    ``main`` has returned, while the interpreter exits, ends the process at once with the run's own exit code
    (its work is done and reported) instead of Python's default (a ``KeyboardInterrupt`` at exit, -2).
    """
    runtime.quiet_third_party_warnings()
    debug = debug_requested(argv)
    guard = runtime.install_signal_guard(prog, debug)
    _ACTIVE_GUARDS.append(guard)
    code = EXIT_ERROR
    try:
        code = _run_main(prog, main, argv, guard, debug)
    except SystemExit as exit_request:  # a numeric code (argparse): passed through
        code = exit_request.code if isinstance(exit_request.code, int) else (0 if exit_request.code is None
                                                                                 else EXIT_ERROR)
        raise
    finally:
        _ACTIVE_GUARDS.remove(guard)
        guard.restore(exit_code=code if argv is None else None)
    return code


def _run_main(prog, main, argv, guard, debug):
    try:
        try:
            code = main(argv)
        finally:
            guard.quiet()
        if guard.signum is not None:  # a signal arrived as main returned
            return _report(prog, KeyboardInterrupt(), guard, debug)
        return code if isinstance(code, int) and not isinstance(code, bool) else 0
    except SystemExit as exit_request:
        if guard.signum is not None:
            return _report(prog, KeyboardInterrupt(), guard, debug)
        if isinstance(exit_request.code, str):  # sys.exit("message"): Python would print it bare
            return _report(prog, exit_request, guard, debug, message=_one_line(exit_request.code))
        raise
    except BaseException as err:  # noqa: BLE001 - this is the one place that turns every failure into a line
        guard.quiet()
        return _report(prog, err, guard, debug)
