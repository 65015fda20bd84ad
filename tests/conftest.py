"""Shared fixtures: a small generated catalogue and its vocabulary, built once per test session.

Tests never touch the user's cache: embeddings are cached under a session temp folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from weaklabel.listings import ColumnRoles, Field

FASHION = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion"
EXAMPLE_ROLES = ColumnRoles(
    fields=(Field("title", "text"), Field("description", "text", 0.3), Field("tags", "tags", 0.5),
            Field("category_path", "category", 0.5)),
    id="id", image="image",
)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("weaklabel-cache")
    os.environ["WEAKLABEL_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def example_data(tmp_path_factory) -> Path:
    """600 generated listings with 32 px images: listings.csv and images/."""
    from weaklabel.synthetic import generate_listings

    folder = tmp_path_factory.mktemp("example")
    generate_listings(600, folder, seed=0, image_size=32)
    return folder


@pytest.fixture(scope="session")
def example_vocab(example_data, tmp_path_factory) -> Path:
    """The vocabulary of ``example_data``, built with the packaged MiniLM model."""
    from weaklabel.labeling import build_vocabulary

    out = tmp_path_factory.mktemp("vocab")
    build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, out, progress=False, min_label_support=5)
    return out


@pytest.fixture(scope="session")
def example_labeled(example_data, example_vocab, tmp_path_factory) -> Path:
    """The weak labels of ``example_data`` (the ``assign`` stage's folder)."""
    from weaklabel.labeling import assign_labels

    out = tmp_path_factory.mktemp("labeled")
    assign_labels(example_data / "listings.csv", example_vocab, out, progress=False)
    return out


@pytest.fixture(scope="session")
def example_shards(example_labeled, example_data, tmp_path_factory) -> Path:
    """All example listings as shards of 32 px images (100 per shard), carrying ``true_type``."""
    from weaklabel.datasets import write_shards

    out = tmp_path_factory.mktemp("shards")
    write_shards(example_labeled, out, images_root=example_data, size=32, workers=1, progress=False,
                 max_samples=100, carry=["true_type"])
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    faster and steadier for tiny models on small, busy machines. OMP_NUM_THREADS too: training,
    embedding and evaluation set torch's threads themselves, never above it."""
    import torch

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(threads)


@pytest.fixture
def rows_accounted(request):
    """The accounting check of a hostile-input case: every row in is written, a duplicate, or rejected.

    ``rows_accounted(rows_in, written, duplicates=0, rejected=0)`` fails the case when a row is
    missing; with ``WEAKLABEL_HOSTILE_LEDGER`` set (``benchmarks/hostile.py`` sets it) each check is
    also appended to that JSON-lines file, which the benchmark sums into its "rows lost" figure.
    """

    def check(rows_in: int, written: int, duplicates: int = 0, rejected: int = 0) -> None:
        lost = rows_in - written - duplicates - rejected
        ledger = os.environ.get("WEAKLABEL_HOSTILE_LEDGER")
        if ledger:
            with open(ledger, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"case": request.node.nodeid, "rows_in": rows_in, "lost": lost}) + "\n")
        assert lost == 0, f"{lost} of {rows_in} rows are neither written, duplicates nor rejected"

    return check


def one_line_error(argv: list[str], capsys) -> str:
    """Run the CLI expecting an input problem: exit status 1, one 'error: ...' line, no traceback."""
    from weaklabel.cli import main

    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 1, f"exit status {status}, stderr: {err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]
