"""Wall time of ``weaklabel demo`` on an idle machine, then beside busy processes.

Runs ``weaklabel demo --out TMP -q`` twice in fresh folders: once alone, once while ``--busy``
processes (``while True: pass``, one core each) run for the whole demo. Printed: the load average
and the cores at the start of each, both wall times and their training seconds, the ratio, and
"met" or "MISSED" for the targets: loaded <= 2 x idle, idle <= 90 s. Results go to OUT/results.json.
The idle figure means something only on a machine that no other job keeps busy: see the load average.

    python benchmarks/demo_under_load.py                       # about 4 minutes on 2 cores
    python benchmarks/demo_under_load.py --busy 4 --out bench-out/demo_under_load-4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IDLE_TARGET_S = 90.0
RATIO_TARGET = 2.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the loaded run (default: 2)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/demo_under_load"), help="where results.json goes")
    return parser.parse_args()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` processes that each keep one core busy until the block ends."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def timed_demo() -> dict[str, Any]:
    """Wall and training seconds of one demo in a fresh folder, with the load average at its start."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="demo_under_load-") as folder:
        load = os.getloadavg()
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "weaklabel.cli", "demo", "--out", folder, "-q"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        manifest = json.loads((Path(folder) / "train" / "manifest.json").read_text())
    return {"wall_s": round(wall, 1), "train_s": round(manifest["timings_s"]["train"], 1),
            "load_average_start": [round(x, 2) for x in load]}


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    args = parse_args()
    print(f"{cores()} cores; load average at start {os.getloadavg()[0]:.2f} (1 min)", flush=True)
    idle = timed_demo()
    print(f"idle:   {idle['wall_s']:.0f} s ({idle['train_s']:.0f} s training), "
          f"load average at start {idle['load_average_start'][0]:.2f}", flush=True)
    with busy_processes(args.busy):
        loaded = timed_demo()
    print(f"loaded: {loaded['wall_s']:.0f} s ({loaded['train_s']:.0f} s training) beside {args.busy} busy "
          f"processes, load average at start {loaded['load_average_start'][0]:.2f}")
    ratio = loaded["wall_s"] / idle["wall_s"]
    targets = {"ratio": {"value": round(ratio, 2), "target": RATIO_TARGET, "met": ratio <= RATIO_TARGET},
               "idle": {"value": idle["wall_s"], "target": IDLE_TARGET_S, "met": idle["wall_s"] <= IDLE_TARGET_S}}
    print(f"ratio:  {ratio:.2f} (target <= {RATIO_TARGET:g}): {verdict(targets['ratio']['met'])}")
    print(f"idle:   {idle['wall_s']:.0f} s (target <= {IDLE_TARGET_S:g} s): {verdict(targets['idle']['met'])}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": cores(), "busy_processes": args.busy,
               "idle": idle, "loaded": loaded, "targets": targets}
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
