"""The machine's measured fp32 peak (a large sgemm) and the model's matrix products alone (a ceiling)."""

import time

from .common import Runner, load_cfg, work
from .flops import shape_from_config, timesformer_matmuls

SGEMM_SIZE = 2048  # large enough to reach the BLAS peak, small enough to run in ~0.1 s


class SgemmRunner(Runner):
    """Best-of-5 ``paddle.matmul`` of two ``[n, n]`` fp32 matrices; ``run`` returns GFLOP/s."""

    measures_peak = True

    def __init__(self, spec):
        import paddle

        self.paddle = paddle
        n = spec.get("sgemm_size", SGEMM_SIZE)
        self.flops = 2.0 * n ** 3
        self.a = paddle.randn([n, n], dtype="float32")
        self.b = paddle.randn([n, n], dtype="float32")
        paddle.matmul(self.a, self.b)

    def run(self):
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            self.paddle.matmul(self.a, self.b)
            best = min(best, time.perf_counter() - start)
        return self.flops / best / 1e9

    def work(self):
        return None  # not a model: the peak the rows are measured against


class MatmulsRunner(Runner):
    """Only the model's matrix products, with ``paddle.matmul`` on ready inputs: no element-wise work.

    The products are :func:`timesformer_matmuls` (same shapes and count, so the same analytic FLOPs
    as the model) for ``batch_size * views`` clips. Its time is what a perfect fusion of every
    element-wise op would leave with Paddle's BLAS, so its ``%peak`` bounds any implementation that
    runs its GEMMs through the same library.
    """

    def __init__(self, spec):
        import paddle

        cfg = load_cfg(spec)
        shape = shape_from_config(cfg.MODEL)
        self.clips = spec["batch_size"] * spec["views"]
        self.frames, self.size = shape["num_frames"], shape["img_size"]
        self.matmul = paddle.matmul
        self.operands = {}
        self.sequence = []
        for _, batch, m, k, n in timesformer_matmuls(**shape):
            # More clips mean more rows of a token-wise product, or more independent attention groups.
            key = (batch * self.clips, m, k, n) if batch > 1 else (1, m * self.clips, k, n)
            if key not in self.operands:
                lead = [key[0]] if key[0] > 1 else []
                self.operands[key] = (paddle.randn(lead + [key[1], k]), paddle.randn(lead + [k, n]))
            self.sequence.append(self.operands[key])

    def run(self):
        for a, b in self.sequence:
            self.matmul(a, b)

    def work(self):
        return work(self.clips, self.frames, self.size, train=False)
