"""malloc tuning (entry points): large freed blocks are reused instead of page-faulted in again.

The optimisation changes no numbers (same kernels, same data); what it changes is countable:
minor page faults when an op writes a fresh large output. Counted in a subprocess so the test
process keeps its own allocator settings.
"""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r"""
import ctypes, ctypes.util, resource, sys
sys.path.insert(0, {repo!r})
from paddlevideo.runtime import tune_malloc
applied = tune_malloc() if sys.argv[1] == "tuned" else False
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
size = 64 * 1024 * 1024  # above glibc's largest dynamic mmap threshold (32 MB), like a batch-4 activation

def op_output():  # what an element-wise op does: allocate its output, write it, free it later
    block = libc.malloc(size)
    libc.memset(block, 1, size)
    libc.free(block)

op_output()  # the first output grows the heap (or maps pages) either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    op_output()
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


def _faults(mode):
    out = subprocess.run([sys.executable, "-c", PROBE.format(repo=REPO), mode], capture_output=True, text=True,
                         check=True, cwd=REPO)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt tuning is glibc (Linux) only")
def test_tuned_malloc_reuses_large_blocks():
    applied, tuned = _faults("tuned")
    assert applied
    _, default = _faults("default")
    pages = 64 * 1024 * 1024 // os.sysconf("SC_PAGE_SIZE")
    assert default > pages // 2     # default glibc: every 64 MB output is mmapped and faulted in anew
    assert tuned < pages // 20      # tuned: the freed block is reused, (almost) no new faults
