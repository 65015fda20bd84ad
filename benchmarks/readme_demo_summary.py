"""Regenerate the README's demo summary: run ``weaklabel demo`` in a temporary folder and write the summary
it printed into the code block after "prints a summary:", so the README's figures are the demo's, not typed.

    python benchmarks/readme_demo_summary.py [--readme README.md]

Takes as long as the demo (about 95 s on 2 free cores). The numbers depend on the CPU thread count (see the
README); the block is rewritten only when the demo finished.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

from weaklabel.demo import run_demo

ROOT = Path(__file__).resolve().parents[1]
BLOCK_AFTER = "prints a summary:"
FENCE = "```"


def demo_summary() -> list[str]:
    """The summary lines of a fresh demo run, with its reports under ``demo/`` as the README shows them."""
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        return run_demo("demo", progress=False, echo=lambda line: None)


def with_summary(readme: str, lines: list[str]) -> str:
    """``readme`` with the code block after the line ending in :data:`BLOCK_AFTER` holding ``lines``."""
    text = readme.splitlines(keepends=True)
    after = next(i for i, line in enumerate(text) if line.rstrip().endswith(BLOCK_AFTER))
    opening = next(i for i in range(after + 1, len(text)) if text[i].strip() == FENCE)
    closing = next(i for i in range(opening + 1, len(text)) if text[i].strip() == FENCE)
    return "".join(text[: opening + 1] + [line + "\n" for line in lines] + text[closing:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    lines = demo_summary()
    args.readme.write_text(with_summary(args.readme.read_text(encoding="utf-8"), lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote the summary into {args.readme}")


if __name__ == "__main__":
    main()
