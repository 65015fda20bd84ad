"""Time and peak memory of ``weaklabel audit`` on the fashion catalogue (44k images), CPU, alone in its process.

By default it audits the round-1 checkpoint of arm (a2) of ``benchmarks/e2e_fashion.py`` on arm (a)'s
shards and vocabulary (run that benchmark first). Prints the time of each step of the audit, the
peak resident memory of the process (``ru_maxrss``) and the load average beside them: run it on a
quiet machine.

    python benchmarks/audit_scale.py
    python benchmarks/audit_scale.py --checkpoint runs/x/last.pt --shards runs/x/shards --vocab runs/x/vocab
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
E2E = ROOT / "bench-out" / "e2e_fashion"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=E2E / "a2_audit-round1" / "last.pt")
    parser.add_argument("--shards", type=Path, default=E2E / "a_weak" / "shards")
    parser.add_argument("--vocab", type=Path, default=E2E / "a_weak" / "vocab")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "audit_scale")
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        print(f"skipped: {args.checkpoint} does not exist (run benchmarks/e2e_fashion.py --arms a2_audit first)")
        return 0
    from weaklabel.audit import audit

    load = os.getloadavg()[0]
    started = time.perf_counter()
    manifest = audit(args.checkpoint, args.shards, args.out, vocab=args.vocab, overwrite=True)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    counts = manifest["counts"]
    print(f"audit of {counts['images']} images ({counts['held_out']} held out), {counts['labels']} labels, "
          f"{os.cpu_count()} cores: {seconds:.0f} s, peak memory {peak:.2f} GiB, load average before {load:.2f}")
    print("steps (s): " + ", ".join(f"{step} {value:.1f}" for step, value in manifest["timings_s"].items()))
    print(f"after: load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
