"""Hostile images, paths, URLs and ids: each row is rejected with a reason (or written), never the run's end.

Each test is one case of the hostile-input suite (``benchmarks/hostile.py``). Labeled folders are
built here from a few rows (a one-label vocabulary), so no case needs the embedding model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pyarrow import feather

from weaklabel.cli import main
from weaklabel.datasets import sample_key, write_shards
from weaklabel.datasets.fetch import FetchOptions, fetch
from weaklabel.datasets.images import ImageOptions, process_image
from weaklabel.datasets.reasons import Rejected

pytestmark = pytest.mark.timeout(120)  # no case may hang the suite, whatever breaks
FAST = {"size": 32, "workers": 1, "progress": False, "retries": 0, "timeout": 2.0}


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

def image_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (40, 40), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    return buffer.getvalue()


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def labeled_folder(folder: Path, rows: list[tuple[str, str]]) -> Path:
    """A minimal ``assign`` artifact: (id, image) rows, each with label 0 of a one-label vocabulary."""
    labeled = folder / "labeled"
    (labeled / "parts").mkdir(parents=True)
    one_label = pa.table({"label_id": pa.array([0], pa.int32()), "name": ["thing"]})
    feather.write_feather(one_label, labeled / "labels.feather")
    (labeled / "manifest.json").write_text(json.dumps({"stage": "assign", "config": {"vocab": "vocab"}}))
    table = pa.table({
        "id": pa.array([i for i, _ in rows], pa.string()),
        "image": pa.array([image for _, image in rows], pa.string()),
        "labels": pa.array([[0]] * len(rows), pa.list_(pa.int32())),
        "scores": pa.array([[0.9]] * len(rows), pa.list_(pa.float32())),
    })
    pq.write_table(table, labeled / "parts" / "part-00000.parquet")
    return labeled


def rejections(out: Path) -> dict[str, tuple[str, str]]:
    frame = pd.read_parquet(out / "rejected.parquet")
    return {i: (reason, detail) for i, reason, detail in zip(frame["id"], frame["reason"], frame["detail"])}


def check_accounted(manifest: dict, rows_accounted) -> dict:
    counts = manifest["counts"]
    rows_accounted(counts["rows_in"], counts["written"], counts["duplicates"], counts["rejected_total"])
    return counts


def rejection_of(func, *args) -> Rejected:
    with pytest.raises(Rejected) as caught:
        func(*args)
    return caught.value


# ------------------------------------------------------------------------------------------------
# 1. images of more than 8 bits keep their brightness
# ------------------------------------------------------------------------------------------------

def test_high_bit_depth_grey_keeps_its_brightness():
    """A 16-bit PNG came out almost white and a float TIFF all black (clipped to 0..255)."""
    ramp = np.linspace(0, 1, 64 * 48).reshape(48, 64)
    cases = {
        "16-bit png": (encoded(Image.fromarray((ramp * 65535).astype(np.uint16)), "PNG"), ramp.mean() * 255),
        "float tiff in 0..1": (encoded(Image.fromarray(ramp.astype(np.float32)), "TIFF"), ramp.mean() * 255),
        "float tiff in -3..1000": (encoded(Image.fromarray((ramp * 1003 - 3).astype(np.float32)), "TIFF"),
                                   ramp.mean() * 255),
        "bright 16-bit png": (encoded(Image.fromarray(np.full((8, 8), 60_000, np.uint16)), "PNG"), 60_000 / 257),
    }
    options = ImageOptions(resize_mode="none", image_format="png")
    for name, (data, expected_mean) in cases.items():
        out = process_image(data, options)
        pixels = np.asarray(Image.open(io.BytesIO(out.data)))
        assert pixels.shape[2] == 3, name
        assert abs(pixels.mean() - expected_mean) < 1.5, (name, pixels.mean(), expected_mean)


# ------------------------------------------------------------------------------------------------
# 2. the output size is bounded, not only the input's
# ------------------------------------------------------------------------------------------------

STRIP_UNDER_MEMORY_LIMIT = """
import resource, sys
from weaklabel.datasets.images import ImageOptions, process_image
from weaklabel.datasets.reasons import Rejected
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
data = open(sys.argv[1], "rb").read()
try:
    process_image(data, ImageOptions(size=256))
except Rejected as rejected:
    print(rejected.reason)
"""


def test_extreme_strip_upscale_is_rejected_before_any_pixel(tmp_path: Path, rows_accounted):
    """A 1x20000 PNG upscaled to --size 256 (keep_ratio) needed 256 x 5,120,000 pixels (5.6 GB)."""
    strip = tmp_path / "root" / "strip.png"
    strip.parent.mkdir()
    strip.write_bytes(image_bytes((90, 20, 200), size=(1, 20_000)))
    (tmp_path / "root" / "good.png").write_bytes(image_bytes((10, 200, 10)))
    run = subprocess.run([sys.executable, "-c", STRIP_UNDER_MEMORY_LIMIT, str(strip)], check=False,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert run.stdout.strip() == "too_large_output", run.stderr  # under 1 GB of address space, no MemoryError
    bordered = process_image(strip.read_bytes(), ImageOptions(size=256, resize_mode="border"))
    assert (bordered.width, bordered.height) == (256, 256)  # the strip fits a 256 square: that output is fine
    assert rejection_of(process_image, strip.read_bytes(), ImageOptions(resize_mode="none", image_format="webp")
                        ).reason == "too_large_output"  # webp holds at most 16383 px a side
    labeled = labeled_folder(tmp_path, [("strip", "strip.png"), ("good", "good.png")])
    manifest = write_shards(labeled, tmp_path / "out", images_root=tmp_path / "root", **{**FAST, "size": 256})
    check_accounted(manifest, rows_accounted)
    assert manifest["counts"]["written"] == 1
    assert rejections(tmp_path / "out")["strip"][0] == "too_large_output"


# ------------------------------------------------------------------------------------------------
# 3. only regular files are read
# ------------------------------------------------------------------------------------------------

def test_fifo_and_device_paths_are_rejected_not_read(tmp_path: Path, rows_accounted):
    """A FIFO as the image hung the stage; /dev/zero was read without bound."""
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe.jpg")
    (root / "good.png").write_bytes(image_bytes((200, 10, 10)))
    labeled = labeled_folder(tmp_path, [("fifo", "pipe.jpg"), ("zero", "/dev/zero"), ("good", "good.png")])
    start = time.monotonic()
    try:
        manifest = write_shards(labeled, tmp_path / "out", images_root=root, allow_outside_root=True, **FAST)
    finally:
        release_fifo_reader(root / "pipe.jpg")
    assert time.monotonic() - start < 60
    check_accounted(manifest, rows_accounted)
    found = rejections(tmp_path / "out")
    assert {i: reason for i, (reason, _) in found.items()} == {"fifo": "fetch_error", "zero": "fetch_error"}
    assert all("not a regular file" in detail for _, detail in found.values())
    assert manifest["counts"]["written"] == 1


def release_fifo_reader(fifo: Path) -> None:
    """Should a regression block a reader on the FIFO, opening its write end lets it go."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # no reader waits: the expected case


# ------------------------------------------------------------------------------------------------
# 4. an unusable source or a colliding id is that row's rejection
# ------------------------------------------------------------------------------------------------

def test_unusable_sources_and_colliding_ids_reject_their_row_only(tmp_path: Path, rows_accounted):
    """A NUL byte in a path, a malformed URL or an id crafted to collide after key sanitizing
    aborted the whole stage, naming no row."""
    root = tmp_path / "root"
    root.mkdir()
    for n, colour in enumerate([(250, 0, 0), (0, 250, 0), (0, 0, 250)]):
        (root / f"{n}.png").write_bytes(image_bytes(colour))
    crafted = f"a_b_{hashlib.sha1(b'a/b').hexdigest()[:8]}"
    assert sample_key(crafted) == sample_key("a/b")
    rows = [("first", "0.png"), ("nul", "0\x00.png"), ("bad-url", "http://[::1/x.jpg"),
            ("control", "http://127.0.0.1:9/a\x01b.jpg"), ("a/b", "1.png"), (crafted, "2.png")]
    manifest = write_shards(labeled_folder(tmp_path, rows), tmp_path / "out", images_root=root, **FAST)
    check_accounted(manifest, rows_accounted)
    found = rejections(tmp_path / "out")
    assert {i: reason for i, (reason, _) in found.items()} == {
        "nul": "invalid_source", "bad-url": "invalid_source", "control": "invalid_source", crafted: "key_collision"}
    assert found[crafted][1] == f"the key {sample_key('a/b')} is already the key of id a/b"
    assert manifest["counts"]["written"] == 2


# ------------------------------------------------------------------------------------------------
# 5. a trickling server cannot hold a fetch
# ------------------------------------------------------------------------------------------------

class TrickleServer:
    """``/body``: headers at once, then one byte every 0.2 s; ``/head``: the status line itself trickles."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits[self.path] = hits.get(self.path, 0) + 1
                head = b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n"
                try:
                    if self.path == "/body":
                        self.wfile.write(head)
                    trickle = head if self.path == "/head" else b"x" * 1000
                    for byte in trickle[: 300]:  # 60 s at most, should the client never give up
                        self.wfile.write(bytes([byte]))
                        time.sleep(0.2)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as intended

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def trickle() -> Iterator[TrickleServer]:
    server = TrickleServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_trickling_server_is_cut_at_the_deadline(trickle: TrickleServer):
    """One byte every 0.5 s held a fetch for 60 s despite --timeout 2: each read came within the timeout."""
    options = FetchOptions(timeout=0.5, retries=2, backoff=0.01)
    for path in ("/body", "/head"):
        start = time.monotonic()
        rejected = rejection_of(fetch, trickle.url(path), options)
        elapsed = time.monotonic() - start
        assert rejected.reason == "timeout" and "took over 1.5 s" in rejected.detail, (path, rejected)
        assert elapsed < 5.0, (path, elapsed)  # 3 x timeout (1.5 s), plus one read at most; 60 s before
        assert trickle.hits[path] == 1  # a server that trickles once will again: no retry


# ------------------------------------------------------------------------------------------------
# 6. local reads stay inside --images-root unless allowed
# ------------------------------------------------------------------------------------------------

def test_paths_outside_the_root_are_rejected_unless_allowed(tmp_path: Path, rows_accounted, capsys):
    """'..', absolute paths, file:// URLs and symlinks read anything the user can read."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "images").mkdir(parents=True)
    outside.mkdir()
    (root / "images" / "good.png").write_bytes(image_bytes((0, 200, 0)))
    (root / "images" / "other.png").write_bytes(image_bytes((0, 0, 200)))
    (outside / "secret.png").write_bytes(image_bytes((200, 0, 0)))
    (root / "images" / "link.png").symlink_to(outside / "secret.png")
    (root / "images" / "linked-folder").symlink_to(outside)
    (root / "images" / "inner-link.png").symlink_to(root / "images" / "other.png")
    rows = [("relative", "images/good.png"), ("dotdot", "../outside/secret.png"),
            ("absolute", str(outside / "secret.png")), ("file-url", (outside / "secret.png").as_uri()),
            ("symlink", "images/link.png"), ("folder-symlink", "images/linked-folder/secret.png"),
            ("inside-symlink", "images/inner-link.png"),
            ("inside-absolute", str(root / "images" / "good.png"))]
    labeled = labeled_folder(tmp_path, rows)
    manifest = write_shards(labeled, tmp_path / "out", images_root=root, **FAST)
    check_accounted(manifest, rows_accounted)
    assert {i: reason for i, (reason, _) in rejections(tmp_path / "out").items()} == dict.fromkeys(
        ["dotdot", "absolute", "file-url", "symlink", "folder-symlink"], "outside_root")
    assert manifest["counts"]["written"] == 2 and manifest["counts"]["duplicates"] == 1  # inside-absolute: good.png

    assert main(["shards", str(labeled), "--out", str(tmp_path / "allowed"), "--images-root", str(root),
                 "--allow-outside-root", "--size", "32", "--workers", "1", "--retries", "0", "-q"]) == 0
    capsys.readouterr()
    allowed = json.loads((tmp_path / "allowed" / "manifest.json").read_text())
    counts = check_accounted(allowed, rows_accounted)
    assert (counts["written"], counts["duplicates"], counts["rejected_total"]) == (3, 5, 0)


# ------------------------------------------------------------------------------------------------
# 7. rejections are deterministic
# ------------------------------------------------------------------------------------------------

def test_rerun_gives_identical_rejections(tmp_path: Path, rows_accounted):
    """rejected.parquet held Pillow's '<_io.BytesIO object at 0x...>', different on every run."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "garbage.jpg").write_bytes(b"this is no image at all")
    (root / "truncated.png").write_bytes(image_bytes((1, 2, 3), size=(64, 64))[:80])
    (root / "good.png").write_bytes(image_bytes((5, 6, 7)))
    rows = [("garbage", "garbage.jpg"), ("truncated", "truncated.png"), ("missing", "none.png"),
            ("nul", "a\x00b.png"), ("bad-url", "http://[::1/x.jpg"), ("good", "good.png")]
    labeled = labeled_folder(tmp_path, rows)
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        check_accounted(write_shards(labeled, out, images_root=root, **FAST), rows_accounted)
    first, second = ((out / "rejected.parquet").read_bytes() for out in outs)
    assert first == second
    details = rejections(outs[0])
    assert len(details) == 5 and not any(" at 0x" in detail for _, detail in details.values()), details
