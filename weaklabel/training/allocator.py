"""glibc malloc settings for CPU training and inference.

A training step on the CPU allocates and frees activations of tens to hundreds of MiB. With
glibc's defaults each such block is ``mmap``-ed and unmapped again (or the heap top trimmed), so
every step pays for page faults on fresh zeroed pages: on efficientnet_b0 at 224 px, a quarter
of the step time went to the kernel. Keeping freed memory in the process (a high mmap and trim
threshold) removes that cost; see ``benchmarks/training_throughput.py``.

Nothing is changed off Linux/glibc, or when the user set glibc's malloc through the environment
(``MALLOC_*_`` variables or ``GLIBC_TUNABLES``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest accepted value (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 1 << 30
USER_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (and the workers it forks later).

    Returns whether the settings were applied. Memory freed after the peak is kept for reuse
    instead of being returned to the system; the peak itself barely moves (efficientnet_b0, 64 px,
    batch 64: main process 1,516 against 1,511 MiB RSS).
    """
    if not sys.platform.startswith("linux") or any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
