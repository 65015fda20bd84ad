"""Exact retrieval at scale: 100,000 queries against 1,000,000 gallery vectors of dimension 256, on CPU.

Vectors are random and L2-normalized (float32). Prints, for the evaluator's blocked search
(``weaklabel.eval.exact_search``, torch matrix products + topk), for faiss ``IndexFlatIP`` when
``import faiss`` works (not a dependency: ``pip install faiss-cpu``) and for a brute-force numpy
reference on a subset of the queries (extrapolated to all of them): the time, the resident memory
before and at the peak of each (Linux: the peak is reset before each method; elsewhere it is the
process's ``ru_maxrss``), and how far the top-k lists agree (target: weaklabel / faiss time <= 1.5).
Lists may differ where float32 rounding swaps near-equal scores; the largest such gap is printed.
On a small shared machine the timings are noisy.

    python benchmarks/retrieval_scale.py [--queries 100000] [--gallery 1000000] [--dim 256] [--k 100]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from weaklabel.eval import exact_search
from weaklabel.search import DEFAULT_BLOCK_BYTES

GIB = 1 << 30


def random_unit_vectors(n: int, dim: int, rng: np.random.Generator, chunk: int = 1 << 16) -> np.ndarray:
    """``n`` random unit vectors, generated and normalized in chunks to bound the extra memory."""
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + len(block)] = block
    return out


def reset_peak() -> bool:
    """Reset this process's peak resident set size (Linux ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def status_bytes(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak) of this process; ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status") as handle:
            return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(name: str, run: Callable[[], Any]) -> tuple[Any, float]:
    """Run, print the resident memory before and at the peak; (result, seconds)."""
    reset_peak()
    before = status_bytes("VmRSS")
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    print(f"{name}: {seconds:.1f} s; resident memory {before / GIB:.2f} GiB before, "
          f"peak {status_bytes('VmHWM') / GIB:.2f} GiB")
    return result, seconds


def numpy_reference(queries: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    """One query at a time: every score, then a stable sort (score descending, index ascending)."""
    return np.stack([np.argsort(-(gallery @ q), kind="stable")[:k] for q in queries])


def agreement(found: np.ndarray, expected: np.ndarray, queries: np.ndarray, gallery: np.ndarray) -> str:
    """Identical top-k lists, shared members, and the largest float64 score gap behind a difference."""
    same = [np.array_equal(a, b) for a, b in zip(found, expected, strict=True)]
    overlap = np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, expected, strict=True)])
    gaps = [np.abs(gallery[a].astype(np.float64) @ q - gallery[b].astype(np.float64) @ q).max()
            for a, b, q, ok in zip(found, expected, queries, same, strict=True) if not ok]
    gap = f"; where lists differ, scores at the same rank differ by <= {max(gaps):.1e}" if gaps else ""
    return f"identical lists {np.mean(same):.2%}, overlap {overlap:.4%}{gap}"


def run_faiss(queries: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(gallery.shape[1])
    index.add(gallery)
    return index.search(queries, k)[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--gallery", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--k", type=int, default=100, help="neighbours per query (the evaluator uses 100)")
    parser.add_argument("--reference-queries", type=int, default=200, help="queries the numpy reference runs")
    parser.add_argument("--block-mb", type=int, default=DEFAULT_BLOCK_BYTES >> 20, help="score buffer of the search")
    parser.add_argument("--no-faiss", action="store_true", help="skip faiss even when it is installed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    gallery = random_unit_vectors(args.gallery, args.dim, rng)
    queries = random_unit_vectors(args.queries, args.dim, rng)
    data_gib = (gallery.nbytes + queries.nbytes) / GIB
    print(f"{args.queries:,} queries x {args.gallery:,} gallery x {args.dim} dims float32 ({data_gib:.2f} GiB), "
          f"k={args.k}; {torch.get_num_threads()} torch threads; data made in {time.perf_counter() - start:.0f} s")

    found, seconds = timed("weaklabel exact_search", lambda: exact_search(queries, gallery, args.k,
                                                                          block_bytes=args.block_mb << 20))
    print(f"  {args.queries / seconds:,.0f} queries/s")

    subset = slice(0, min(args.reference_queries, args.queries))
    expected, ref_seconds = timed("numpy brute force", lambda: numpy_reference(queries[subset], gallery, args.k))
    n_ref = len(expected)
    print(f"  {n_ref} queries, about {ref_seconds / n_ref * args.queries:,.0f} s for all; weaklabel vs numpy on them: "
          f"{agreement(found.indices[subset], expected, queries[subset], gallery)}")

    if args.no_faiss:
        return 0
    try:
        import faiss
    except ImportError:
        print("faiss: not installed (pip install faiss-cpu to compare)")
        return 0
    faiss_indices, faiss_seconds = timed(f"faiss {faiss.__version__} IndexFlatIP (a copy of the gallery in its index)",
                                         lambda: run_faiss(queries, gallery, args.k))
    print(f"  {args.queries / faiss_seconds:,.0f} queries/s, {faiss.omp_get_max_threads()} OpenMP threads; "
          f"faiss vs numpy: {agreement(faiss_indices[subset], expected, queries[subset], gallery)}")
    print(f"ratio weaklabel / faiss: {seconds / faiss_seconds:.2f} (target <= 1.5); weaklabel vs faiss, all queries: "
          f"{agreement(found.indices, faiss_indices, queries, gallery)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
