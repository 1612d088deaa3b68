"""The one exception family for mistakes a user can fix: a bad config key, list line, file or flag.

Every command-line tool prints such an error as one line, ``<tool>: error: <message>``, and exits
non-zero; anything else is a bug and keeps its traceback. So the message of a :class:`UserError`
names the file, key or value at fault and says what to do, in one line.
"""


class UserError(Exception):
    """Base of every error caused by the user's input (config, lists, videos, weights, flags, disk)."""
