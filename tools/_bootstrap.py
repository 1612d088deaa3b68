"""What every tool does first, before it imports the library: ``import _bootstrap`` at the top of ``tools/*.py``
(``tools/data/*/`` scripts run this file by path, see there).

- A clone run without installing (``python tools/predict.py ...`` after ``pip install -r requirements.txt``,
  as PaddleVideo is used): the clone's root goes first on ``sys.path``, so ``paddlevideo`` is this clone's,
  as it is for ``main.py``, whose folder is the root. After ``pip install -e .`` the root is the installed
  package's folder anyway; a tool of a clone never mixes with another copy of the library installed elsewhere.
- Third-party warnings that mean nothing to a user of the tools are silenced before anything imports paddle
  (:func:`paddlevideo.runtime.quiet_third_party_warnings`; ``cli.run`` calls it too, for the other entry points).
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if os.path.isfile(os.path.join(ROOT, "paddlevideo", "__init__.py")) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from paddlevideo.runtime import quiet_third_party_warnings  # noqa: E402  (no paddle import)

quiet_third_party_warnings()
