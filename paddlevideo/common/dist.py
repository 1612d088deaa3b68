"""Multi-process helpers for runs started by ``python -m paddle.distributed.launch``.

The launcher sets ``PADDLE_TRAINER_ID`` / ``PADDLE_TRAINERS_NUM`` for every process; a plain
``python main.py`` is a world of one. All helpers work (and do no communication) in a world of one.
:func:`get_rank` and :func:`get_world_size` are the project's one source of both (engine, loader, logger).

When one process of a run fails, the launcher stops the others (``paddle.distributed.launch`` watches its
processes and terminates the rest when one exits non-zero; a peer blocked in a collective on a dead process
also fails at once, its gloo/NCCL connection reset). The engine therefore only has to make sure that a failing
process exits: it raises, never waits.
"""

import os

import numpy as np


def get_rank():
    """This process's rank (0 in a single-process run)."""
    return int(os.environ.get("PADDLE_TRAINER_ID") or 0)


def get_world_size():
    """Number of processes in the run (1 in a single-process run)."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM") or 1)


def is_main_process():
    """True on the process that writes logs and checkpoints (rank 0)."""
    return get_rank() == 0


def init_distributed():
    """Initialise the process group when launched with more than one process; returns the world size.

    On a CPU-only build paddle uses gloo; on GPU it uses NCCL, one device per process.
    """
    world = get_world_size()
    if world > 1:
        import paddle.distributed as dist

        if not dist.is_initialized():
            dist.init_parallel_env()
    return world


def all_gather_arrays(array):
    """Concatenate a numpy array's first axis over all processes (rank order).

    Arrays may differ in length between processes (a rank can see fewer test clips); they are
    sent as Python objects, which is fine for the per-clip scores of a test set.
    """
    if get_world_size() == 1:
        return array
    import paddle.distributed as dist

    parts = []
    dist.all_gather_object(parts, np.asarray(array))
    return np.concatenate(parts, axis=0)


def all_reduce_mean(values):
    """Average a list of Python floats over all processes (e.g. epoch-mean loss / top-1)."""
    if get_world_size() == 1:
        return list(values)
    import paddle
    import paddle.distributed as dist

    tensor = paddle.to_tensor(np.asarray(values, dtype="float64"))
    dist.all_reduce(tensor)
    return (tensor.numpy() / get_world_size()).tolist()


def barrier():
    """Wait for every process (no-op in a world of one)."""
    if get_world_size() > 1:
        import paddle.distributed as dist

        dist.barrier()
