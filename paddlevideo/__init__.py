"""PaddleVideo-compatible TimeSformer toolkit.

Importing the package has no side effects: no logging set-up, no environment changes,
no paddle import. Sub-packages import paddle where they need it.
"""

__version__ = "0.1.0"
