"""Files the service makes for a client (the attention pictures), kept in its own folder for a while.

Each result is a folder named by a random token; only names from :data:`FILES` inside a token folder are ever
served, so no client-given path reaches the file system. At most ``keep`` results are kept (the oldest go
first), and the whole folder belongs to the service's work folder, removed when the service stops.
"""

import os
import re
import secrets
import shutil
import threading

FILES = {"attention_grid.png": "image/png", "attention.gif": "image/gif", "temporal_share.png": "image/png"}
_TOKEN = re.compile(r"[0-9a-f]{32}")


class ResultStore:
    """Result folders under ``root`` (created), the newest ``keep`` of them."""

    def __init__(self, root, keep):
        self.root, self.keep = root, int(keep)
        os.makedirs(root, exist_ok=True)
        self._tokens, self._lock = [], threading.Lock()

    def new(self):
        """``(token, folder)`` of a fresh result; the oldest beyond ``keep`` are deleted."""
        token = secrets.token_hex(16)
        folder = os.path.join(self.root, token)
        os.makedirs(folder)
        with self._lock:
            self._tokens.append(token)
            old, self._tokens = self._tokens[:-self.keep], self._tokens[-self.keep:]
        for stale in old:
            shutil.rmtree(os.path.join(self.root, stale), ignore_errors=True)
        return token, folder

    def path(self, token, name):
        """The file ``name`` of result ``token``, or None when either is not one the service made."""
        if not _TOKEN.fullmatch(token or "") or name not in FILES:
            return None
        with self._lock:
            if token not in self._tokens:
                return None
        path = os.path.join(self.root, token, name)
        return path if os.path.isfile(path) else None
