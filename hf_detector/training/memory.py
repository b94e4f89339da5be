"""Keep freed memory in the process, so each training step does not page-fault its activations in again.

PyTorch's CPU allocator calls `malloc`/`free` directly. glibc serves every block over its mmap threshold
(32 MB at most; a batch of 32 at 160 px has activations of ~80 MB) with a fresh `mmap` and unmaps it on
`free`, so every step touches new pages: the kernel zero-fills ~0.8 GB per step (25 MB with this setting)
and the memory-bound ops (BatchNorm, ReLU6) run at a fraction of their speed. Serving big blocks from the
heap and never trimming it lets the next step reuse the same pages. Measured by `make bench` (training
throughput section).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

logger = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
OPT_OUT = "HF_DETECTOR_KEEP_FREED_MEMORY"  # "0" keeps glibc's defaults


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve large blocks from the heap and keep what is freed; True if it applied.

    A no-op (False) off Linux/glibc (macOS, Windows, musl) or when HF_DETECTOR_KEEP_FREED_MEMORY=0. The
    peak resident memory stays that of one step: the same pages are reused, not accumulated.
    """
    if os.environ.get(OPT_OUT, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt takes an int: 2**31 - 1 bytes (2 GiB) of free heap top before any trim, in practice never
    applied = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    if applied:
        logger.debug("malloc: large blocks from the heap, freed memory kept for reuse")
    return applied
