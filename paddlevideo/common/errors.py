"""The exceptions for mistakes a user can fix, grouped by what the user must fix.

Every command-line tool prints such an error as one line, ``<tool>: error: <message>``, and exits
non-zero; anything else is a bug and keeps its traceback. So the message names the file, key or value
at fault and says what to do, in one line. Raise one of the groups below (or a subclass that adds a
builtin base for callers that catch it), never :class:`UserError` itself in new code:

- :class:`ConfigError`: a config file, key, value, override or command-line flag;
- :class:`InputError`: a file or data the user gave (video, list, label list, checkpoint, exported
  model, upload) that cannot be used as it is;
- :class:`OutputError`: an output folder or file that cannot be created or written;
- :class:`RunError`: the run cannot give a true result and stops (diverged, nothing scored, a folder
  another run holds, a resume that would lose work).

The narrower classes elsewhere (``ListFileError``, ``CheckpointError``, ``TrainingDiverged``, ...) are small
subclasses of exactly one group, kept so that callers can catch them (``tests/test_errors_groups.py``;
docs/reliability.md lists them).
"""


class UserError(Exception):
    """Base of every error caused by the user's input (config, lists, videos, weights, flags, disk)."""


class ConfigError(UserError, ValueError):
    """A config file, key, value, ``-o`` override or command-line flag is wrong; the message names it."""


class InputError(UserError, ValueError):
    """A file or data the user gave cannot be used as it is; the message names the file and says why."""


class OutputError(UserError):
    """An output folder or file cannot be created or written (the message names it and says why)."""


class RunError(UserError, RuntimeError):
    """The run cannot go on to a true result (the message says what happened and what to do)."""


def first_line(err, limit=300):
    """A one-line summary of an exception for a user-facing message: its first useful line, skipping Paddle's
    C++ traceback banners (``C++ Traceback``, ``Error Message Summary``, numbered frames), at most ``limit``
    characters; the type name when the message is empty."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    skip = ("C++ Traceback", "-----", "Error Message Summary", "[Hint", "[operator")
    useful = [line for line in lines if not line.startswith(skip) and not line[:1].isdigit()]
    for line in useful:
        if "Error" in line or line.startswith("("):
            return line[:limit]
    return (useful or lines or [type(err).__name__])[0][:limit]
