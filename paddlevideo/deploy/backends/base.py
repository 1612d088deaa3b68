"""The one interface every inference backend implements."""

import numpy as np


class Predictor:
    """An exported model on one runtime: ``predictor(imgs) -> logits``.

    ``imgs`` is float32 ``[N, 3, V*T, H, W]`` (V views of T frames back to back, as the test pipeline makes
    them); the result is float32 ``[N, num_classes]``, the logits averaged over the views by the model.
    Subclasses set :attr:`backend` and implement :meth:`run` on a C-contiguous float32 array.
    """

    backend = None

    def __init__(self, model_file, precision="fp32"):
        self.model_file = model_file
        self.precision = precision

    def __call__(self, imgs):
        return np.asarray(self.run(np.ascontiguousarray(imgs, np.float32)), np.float32)

    def run(self, imgs):
        raise NotImplementedError

    def describe(self):
        """``'<model file> on <backend> in <precision>'`` for logs."""
        return f"{self.model_file} on {self.backend} in {self.precision}"
