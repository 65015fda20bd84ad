"""The shards stage on the real ``assign`` output of the generated example catalogue."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pyarrow import feather

from weaklabel.artifacts import read_manifest
from weaklabel.cli import main
from weaklabel.datasets import partitions, sample_key, verify_shards, write_shards
from weaklabel.datasets.format import (
    parse_splits,
    shard_name,
    split_of,
    split_position,
    write_tar,
)
from weaklabel.datasets.writer import shard_bounds

FAST = {"size": 32, "workers": 1, "progress": False}


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

def labeled_rows(labeled: Path) -> pd.DataFrame:
    return pd.read_parquet(labeled / "parts")


def derive(labeled: Path, out: Path, n: int, images: dict[int, str] | None = None,
           unlabel: set[int] = frozenset()) -> Path:
    """The first ``n`` rows of a labeled folder with some images replaced, some labels removed."""
    table = pq.read_table(min((labeled / "parts").glob("part-*.parquet"))).slice(0, n)
    column = table.column("image").to_pylist()
    for row, value in (images or {}).items():
        column[row] = value
    table = table.set_column(table.schema.get_field_index("image"), "image", pa.array(column, pa.string()))
    for name in ("labels", "scores"):
        values = [[] if i in unlabel else v for i, v in enumerate(table.column(name).to_pylist())]
        column_type = table.schema.field(name).type
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(values, column_type))
    (out / "parts").mkdir(parents=True)
    pq.write_table(table, out / "parts" / "part-00000.parquet")
    for name in ("manifest.json", "labels.feather"):
        shutil.copy(labeled / name, out / name)
    return out


def labelled_positions(labeled: Path, n: int) -> list[int]:
    rows = labeled_rows(labeled).head(n)
    return [i for i, labels in enumerate(rows["labels"]) if len(labels)]


def read_samples(folder: Path) -> dict[str, list[dict]]:
    """{shard name: [{"key", ext: bytes, ...}]} for every tar in the folder."""
    shards = {}
    for path in sorted(folder.glob("*.tar")):
        samples: list[dict] = []
        with tarfile.open(path) as tar:
            for info in tar:
                key, _, ext = info.name.partition(".")
                if not samples or samples[-1]["key"] != key:
                    samples.append({"key": key})
                samples[-1][ext] = tar.extractfile(info).read()
        shards[path.name] = samples
    return shards


def shard_digests(manifest: dict) -> dict[str, str]:
    return {s["name"]: s["sha256"] for split in manifest["outputs"]["splits"].values() for s in split["shards"]}


def jpeg_bytes(size: tuple[int, int], colour=(10, 200, 10), exif: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", **({"exif": exif} if exif else {}))
    return buffer.getvalue()


class DelayServer:
    """Serves files under ``root`` on 127.0.0.1; ``/slow/...`` waits 2 s, ``/delay/...`` 30 ms,
    ``/big/...`` declares a huge length, anything missing is a 404."""

    def __init__(self, root: Path) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                prefix, _, rest = self.path.lstrip("/").partition("/")
                time.sleep({"slow": 2.0, "delay": 0.03}.get(prefix, 0.0))
                path = root / rest
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(50_000_000 if prefix == "big" else len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, prefix: str, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{prefix}/{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(example_data: Path) -> Iterator[DelayServer]:
    server = DelayServer(example_data)
    yield server
    server.close()


@pytest.fixture(scope="module")
def labeled(example_labeled: Path, tmp_path_factory) -> Path:
    """The 600 example listings with every tenth one stripped of its labels."""
    return derive(example_labeled, tmp_path_factory.mktemp("labeled") / "labeled", 600, unlabel=set(range(0, 600, 10)))


@pytest.fixture(scope="module")
def shards(labeled: Path, example_data: Path, tmp_path_factory) -> Path:
    """All 600 listings written once with small shards; read-only for the tests below."""
    out = tmp_path_factory.mktemp("shards")
    write_shards(labeled, out, images_root=example_data, max_samples=100, carry=["brand"], **FAST)
    return out


# ------------------------------------------------------------------------------------------------
# the artifact
# ------------------------------------------------------------------------------------------------

def test_every_row_is_accounted_for(shards: Path, labeled: Path):
    manifest = read_manifest(shards, "shards")
    counts = manifest["counts"]
    rows = labeled_rows(labeled)
    unlabelled = rows.loc[rows["labels"].map(len) == 0, "id"]
    assert counts["rows_in"] == len(rows) == counts["written"] + counts["duplicates"] + counts["rejected_total"]
    assert counts["rejected"]["no_labels"] == len(unlabelled) > 0
    rejected = pd.read_parquet(shards / "rejected.parquet")
    assert list(rejected.columns) == ["id", "image", "reason", "detail"]
    assert sorted(rejected["id"]) == sorted(unlabelled)
    assert counts["written"] == sum(s["samples"] for s in manifest["outputs"]["splits"].values())
    assert counts["passed_through"] == counts["written"]  # 32 px JPEG sources at --size 32 are stored as they are
    assert manifest["inputs"][0]["path"] == str(labeled.resolve())
    assert manifest["outputs"]["run"] == "fresh" and not (shards / "_work").exists()


def test_samples_follow_the_format(shards: Path, labeled: Path, example_data: Path):
    rows = labeled_rows(labeled).set_index("id")
    names = pd.read_parquet(shards / "labels.parquet").set_index("label_id")["name"]
    splits = read_manifest(shards)["config"]["splits"]
    seen = []
    for shard, samples in read_samples(shards).items():
        split = shard.split("-")[0]
        for sample in samples:
            assert set(sample) == {"key", "jpg", "json", "cls"}
            meta = json.loads(sample["json"])
            row = rows.loc[meta["id"]]
            assert sample["key"] == sample_key(meta["id"]) and "." not in sample["key"]
            assert meta["labels"] == list(row["labels"]) and meta["brand"] == row["brand"]
            assert meta["label_names"] == [names[i] for i in meta["labels"]]
            assert meta["scores"] == pytest.approx(list(row["scores"]), abs=1e-6)
            best_index = max(range(len(meta["scores"])), key=meta["scores"].__getitem__)
            assert sample["cls"] == str(meta["labels"][best_index]).encode()
            assert Image.open(io.BytesIO(sample["jpg"])).size == (meta["width"], meta["height"]) == (32, 32)
            assert sample["jpg"] == (example_data / row["image"]).read_bytes()  # passed through unchanged
            assert split_of(meta["id"], splits) == split
            seen.append((split, rows.index.get_loc(meta["id"])))
    for split in splits:  # input order within each split, across its shards
        positions = [p for s, p in seen if s == split]
        assert positions == sorted(positions)


def test_shards_are_numbered_and_bounded_by_samples(shards: Path):
    manifest = read_manifest(shards)
    for split, info in manifest["outputs"]["splits"].items():
        names = [s["name"] for s in info["shards"]]
        assert names == [shard_name(split, i) for i in range(len(names))]
        assert all(s["samples"] <= 100 for s in info["shards"])
        assert sum(s["samples"] for s in info["shards"]) == info["samples"]
        assert sum(info["label_histogram"].values()) >= info["samples"]
    assert len(manifest["outputs"]["splits"]["train"]["shards"]) > 1
    assert not list(shards.glob("*.tmp"))


def test_timm_info_wids_index_and_labels(shards: Path, labeled: Path):
    manifest = read_manifest(shards)
    info = json.loads((shards / "_info.json").read_text())
    assert info["name"] == shards.name
    for split, expected in manifest["outputs"]["splits"].items():
        entry = info["splits"][split]
        assert entry == {"name": split, "num_samples": expected["samples"],
                         "filenames": [s["name"] for s in expected["shards"]],
                         "shard_lengths": [s["samples"] for s in expected["shards"]]}
        index = json.loads((shards / f"{split}.index.json").read_text())
        assert index["__kind__"] == "wids-shard-index-v1" and index["wids_version"] == 1
        assert [(s["url"], s["nsamples"]) for s in index["shardlist"]] == [
            (s["name"], s["samples"]) for s in expected["shards"]]
    vocab = Path(read_manifest(labeled)["config"]["vocab"])
    assert pq.read_table(shards / "labels.parquet").equals(pq.read_table(vocab / "labels.parquet"))
    from timm.data.readers.reader_wds import ReaderWds

    reader = ReaderWds(str(shards), name="x", split="train", is_training=False, batch_size=1)
    assert len(reader) == manifest["outputs"]["splits"]["train"]["samples"]
    image, target = next(iter(reader))
    assert image.size == (32, 32) and isinstance(target, int)


def test_verify_passes_a_sound_folder(shards: Path):
    assert verify_shards(shards) == []


# ------------------------------------------------------------------------------------------------
# options
# ------------------------------------------------------------------------------------------------

def test_max_bytes_bounds_shards(labeled: Path, example_data: Path, tmp_path: Path):
    subset = derive(labeled, tmp_path / "labeled", 80)
    manifest = write_shards(subset, tmp_path / "out", images_root=example_data, max_bytes=20_480,
                            splits="train=1", **FAST)
    shards = manifest["outputs"]["splits"]["train"]["shards"]
    assert len(shards) > 2
    for shard in shards:
        assert (tmp_path / "out" / shard["name"]).stat().st_size == shard["bytes"] <= 20_480
    assert verify_shards(tmp_path / "out") == []


def test_shard_bounds():
    assert shard_bounds([1000] * 7, max_samples=3, max_bytes=10**9) == [(0, 3), (3, 6), (6, 7)]
    # a tar of n 1 kB samples takes 10 kB records: 1024*n + 1024 end bytes, rounded up to 10240
    assert shard_bounds([1024] * 12, max_samples=100, max_bytes=10_240) == [(0, 9), (9, 12)]
    assert shard_bounds([50_000, 10, 10], max_samples=100, max_bytes=20_480) == [(0, 1), (1, 3)]
    assert shard_bounds([], 3, 100) == []


def test_fetch_window_keeps_order_and_grows_for_slow_sources():
    from concurrent.futures import ThreadPoolExecutor

    from weaklabel.datasets.partitions import _ordered

    def slow(x: int) -> int:
        time.sleep(0.05)
        return x

    with ThreadPoolExecutor(8) as pool:
        assert list(_ordered(pool, lambda x: x * 2, range(50), most=8)) == [x * 2 for x in range(50)]
        start = time.perf_counter()
        assert list(_ordered(pool, slow, range(40), most=8)) == list(range(40))
        assert time.perf_counter() - start < 1.2  # one at a time would take 2 s


def test_write_tar_is_what_tarfile_writes():
    members = [[("a.jpg", b"x" * 700), ("a.json", b"{}")], [("b" * 120 + ".cls", b"3")]]
    ours, theirs = io.BytesIO(), io.BytesIO()
    write_tar(ours, members)
    with tarfile.open(fileobj=theirs, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (m for sample in members for m in sample):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o444, 0
            tar.addfile(info, io.BytesIO(data))
    assert ours.getvalue() == theirs.getvalue()


def test_keep_unlabelled(labeled: Path, example_data: Path, tmp_path: Path):
    subset = derive(labeled, tmp_path / "labeled", 80)
    unlabelled = set(labeled_rows(subset).query("labels.str.len() == 0")["id"])
    assert unlabelled
    manifest = write_shards(subset, tmp_path / "out", images_root=example_data, keep_unlabelled=True, **FAST)
    assert manifest["counts"]["written"] == 80
    samples = [s for shard in read_samples(tmp_path / "out").values() for s in shard]
    for sample in samples:
        meta = json.loads(sample["json"])
        assert ("cls" in sample) == (meta["id"] not in unlabelled)
        if meta["id"] in unlabelled:
            assert meta["labels"] == meta["label_names"] == meta["scores"] == []
    assert verify_shards(tmp_path / "out") == []


def test_carry_of_a_missing_column_names_the_columns(labeled: Path, example_data: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="articleType.*brand"):
        write_shards(labeled, tmp_path / "out", images_root=example_data, carry=["articleType"], **FAST)
    with pytest.raises(ValueError, match="labels"):
        write_shards(labeled, tmp_path / "out", images_root=example_data, carry=["labels"], **FAST)


def test_splits_are_deterministic_and_follow_the_fractions():
    splits = parse_splits("train=0.8,val=0.15,test=0.05")
    ids = [f"listing-{i}" for i in range(20_000)]
    assigned = pd.Series([split_of(i, splits) for i in ids])
    assert assigned.value_counts(normalize=True).to_dict() == pytest.approx(splits, abs=0.01)
    assert [split_of(i, splits) for i in ids[:100]] == assigned[:100].tolist()
    assert 0 <= split_position("x") < 1 and split_position("x") == split_position("x")
    assert parse_splits({"train": 1}) == {"train": 1.0}
    for bad in ("train=0.9,val=0.2", "train=0.5,train=0.5", "train-a=1", "train", "train=x", "", "a=0,b=1"):
        with pytest.raises(ValueError):
            parse_splits(bad)


def test_sample_keys_are_safe_and_distinct():
    assert sample_key("abc-DEF_123") == "abc-DEF_123"
    keys = {sample_key(i) for i in ("a b", "a_b", "a.b", "a/b", "a b ", "")}
    assert len(keys) == 6
    for key in keys:
        assert key and all(c.isalnum() or c in "_-" for c in key)
    assert sample_key("a.b").startswith("a_b_") and len(sample_key("a.b")) == len("a_b_") + 8


# ------------------------------------------------------------------------------------------------
# sources, rejections, duplicates
# ------------------------------------------------------------------------------------------------

def test_sources_and_rejections(labeled: Path, example_data: Path, tmp_path: Path, server: DelayServer):
    rows = labeled_rows(labeled).head(40)
    use = labelled_positions(labeled, 40)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (extra / "tiny.jpg").write_bytes(jpeg_bytes((8, 8)))
    exif = Image.Exif()
    exif[0x0112] = 6
    (extra / "rotated.jpg").write_bytes(jpeg_bytes((32, 48), exif=exif.tobytes()))

    def image_of(i: int) -> str:
        return rows["image"][use[i]]

    plan = {
        "absolute": str(example_data / image_of(0)), "file_url": (example_data / image_of(1)).as_uri(),
        "http": server.url("fast", image_of(2)), "http_404": server.url("fast", "images/none.jpg"),
        "http_slow": server.url("slow", image_of(4)), "http_big": server.url("big", image_of(5)),
        "corrupt": str(extra / "corrupt.jpg"), "tiny": str(extra / "tiny.jpg"), "rotated": str(extra / "rotated.jpg"),
        "empty": "", "missing": "images/none.jpg",
    }
    subset = derive(labeled, tmp_path / "labeled", 40, {use[i]: v for i, v in enumerate(plan.values())})
    manifest = write_shards(subset, tmp_path / "out", images_root=example_data, timeout=0.5, retries=0,
                            min_size=16, max_download_bytes=1_000_000, allow_outside_root=True, **FAST)
    ids = dict(zip(plan, rows["id"][use[: len(plan)]]))
    reasons = pd.read_parquet(tmp_path / "out" / "rejected.parquet").set_index("id")["reason"]
    assert {name: reasons.get(ids[name]) for name in plan} == {
        "absolute": None, "file_url": None, "http": None, "http_404": "not_found", "http_slow": "timeout",
        "http_big": "too_large", "corrupt": "decode_error", "tiny": "too_small", "rotated": None,
        "empty": "missing_image", "missing": "not_found"}
    written = {json.loads(s["json"])["id"]: s for shard in read_samples(tmp_path / "out").values() for s in shard}
    assert {ids["absolute"], ids["file_url"], ids["http"], ids["rotated"]} <= set(written)
    rotated = json.loads(written[ids["rotated"]]["json"])
    assert (rotated["width"], rotated["height"]) == (48, 32)  # upright 48x32, shorter side already 32
    counts = manifest["counts"]
    assert counts["rows_in"] == 40 == counts["written"] + counts["duplicates"] + counts["rejected_total"]


def test_duplicate_images_are_written_once(labeled: Path, example_data: Path, tmp_path: Path):
    rows = labeled_rows(labeled).head(60)
    first, second, third = labelled_positions(labeled, 60)[:3]
    copy = tmp_path / "copy.jpg"
    shutil.copy(example_data / rows["image"][first], copy)
    subset = derive(labeled, tmp_path / "labeled", 60, {second: str(copy), third: rows["image"][first]})
    manifest = write_shards(subset, tmp_path / "out", images_root=example_data, allow_outside_root=True, **FAST)
    duplicates = pd.read_parquet(tmp_path / "out" / "duplicates.parquet")
    winner = rows["id"][first]
    splits = read_manifest(tmp_path / "out")["config"]["splits"]
    copy = {"duplicate_of": winner, "split": split_of(winner, splits), "kind": "exact", "distance": 0,
            "group": winner, "written": False}
    assert duplicates.to_dict("records") == [{"id": rows["id"][second], **copy}, {"id": rows["id"][third], **copy}]
    written = [json.loads(s["json"])["id"] for shard in read_samples(tmp_path / "out").values() for s in shard]
    assert winner in written and rows["id"][second] not in written and rows["id"][third] not in written
    assert manifest["counts"]["duplicates"] == 2


# ------------------------------------------------------------------------------------------------
# resuming, Dask, verify, CLI
# ------------------------------------------------------------------------------------------------

def test_resume_after_kill_gives_the_same_shards(labeled: Path, tmp_path: Path, server: DelayServer):
    rows = labeled_rows(labeled).head(40)
    subset = derive(labeled, tmp_path / "labeled", 40, {i: server.url("delay", rows["image"][i]) for i in range(40)})
    out = tmp_path / "resumed"
    command = [sys.executable, "-m", "weaklabel.cli", "shards", str(subset), "--out", str(out), "--size", "32",
               "--workers", "1", "--fetch-threads", "1", "--partition-rows", "5", "--max-samples", "4", "-q"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (out / "_work" / "part-00000.parquet").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()
    process.wait()
    assert not (out / "manifest.json").exists() and not (out / "_work" / "part-00007.parquet").exists()
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr
    assert "resumed an interrupted run" in finished.stdout
    resumed = read_manifest(out)
    assert resumed["outputs"]["run"] == "resumed" and resumed["outputs"]["partitions_resumed"] >= 1
    fresh = write_shards(subset, tmp_path / "fresh", partition_rows=5, max_samples=4, **FAST)
    assert shard_digests(resumed) == shard_digests(fresh) and len(shard_digests(fresh)) > 3
    assert resumed["counts"] == fresh["counts"]


def test_interrupted_run_resumes_or_restarts_when_options_change(labeled: Path, example_data: Path,
                                                                 tmp_path: Path, monkeypatch):
    subset = derive(labeled, tmp_path / "labeled", 60)

    def crash(job, task):
        raise RuntimeError("killed")

    options = {"images_root": example_data, "partition_rows": 10, **FAST}
    with monkeypatch.context() as patch:
        patch.setattr(partitions, "write_shard", crash)
        with pytest.raises(RuntimeError):
            write_shards(subset, tmp_path / "out", **options)
    resumed = write_shards(subset, tmp_path / "out", **options)
    assert resumed["outputs"]["run"] == "resumed" and resumed["outputs"]["partitions_resumed"] == 6
    with monkeypatch.context() as patch:
        patch.setattr(partitions, "write_shard", crash)
        with pytest.raises(RuntimeError):  # replacing the finished shards
            write_shards(subset, tmp_path / "out", overwrite=True, **options)
    restarted = write_shards(subset, tmp_path / "out", **{**options, "size": 24})
    assert restarted["outputs"]["run"] == "restarted" and restarted["outputs"]["partitions_resumed"] == 0
    assert restarted["config"]["size"] == 24 and verify_shards(tmp_path / "out") == []


def test_local_cluster_writes_the_same_shards(labeled: Path, example_data: Path, tmp_path: Path):
    from distributed import LocalCluster

    subset = derive(labeled, tmp_path / "labeled", 200)
    options = {"images_root": example_data, "max_samples": 30, "carry": ["brand"], "partition_rows": 50,
               "size": 32, "progress": False}
    inline = write_shards(subset, tmp_path / "inline", workers=1, **options)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        distributed = write_shards(subset, tmp_path / "dask", scheduler=cluster.scheduler_address, **options)
    assert distributed["outputs"]["partitions"] == 4 and len(shard_digests(inline)) > 4
    assert shard_digests(distributed) == shard_digests(inline)


def test_verify_reports_every_problem(shards: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    shutil.copytree(shards, broken)
    with tarfile.open(broken / "train-000000.tar") as tar:
        image = next(m for m in tar.getmembers() if m.name.endswith(".jpg"))
    with open(broken / "train-000000.tar", "r+b") as handle:  # wipe the JPEG's start marker in place
        handle.seek(image.offset_data)
        handle.write(b"\0\0\0\0")
    (broken / "val-000000.tar").unlink()
    shutil.copy(broken / "test-000000.tar", broken / "extra-000000.tar")
    problems = verify_shards(broken)
    assert any("train-000000.tar: sha256 differs" in p for p in problems)
    assert any(p.startswith("train-000000.tar: ") and "image does not decode" in p for p in problems)
    assert "val-000000.tar: missing" in problems
    assert "extra-000000.tar: not listed in the manifest" in problems


def test_cli_help_lists_options_and_reasons(capsys):
    from weaklabel.datasets.reasons import REASONS

    with pytest.raises(SystemExit) as exit_:
        main(["shards", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--images-root", "--timeout", "--retries", "--max-download-bytes", "--user-agent",
                   "--fetch-threads", "--resize-mode", "--resize-only-if-bigger", "--format", "--quality",
                   "--min-size", "--max-pixels", "--split", "--carry", "--keep-unlabelled", "--max-samples",
                   "--max-bytes", "--workers", "--scheduler", "--quiet"):
        assert option in text
    assert all(reason in text for reason in REASONS)


def test_cli_verify_has_its_own_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--help"])
    text = capsys.readouterr().out
    assert exit_.value.code == 0
    assert text.startswith("usage: weaklabel verify") and "--workers" in text and "--size" not in text


def test_cli_writes_and_verifies(labeled: Path, example_data: Path, tmp_path: Path, capsys):
    subset = derive(labeled, tmp_path / "labeled", 50)
    out = tmp_path / "out"
    assert main(["shards", str(subset), "--out", str(out), "--images-root", str(example_data), "--size", "40",
                 "--format", "webp", "--split", "train=0.5,val=0.5", "--carry", "brand", "--workers", "1", "-q"]) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "train" in text and "val" in text
    manifest = read_manifest(out)
    assert manifest["config"]["image_format"] == "webp" and manifest["config"]["splits"] == {"train": 0.5, "val": 0.5}
    sample = read_samples(out)["train-000000.tar"][0]
    assert Image.open(io.BytesIO(sample["webp"])).size == (40, 40)
    assert main(["verify", str(out), "--workers", "1", "-q"]) == 0
    (out / "val-000000.tar").write_bytes(b"garbage")
    with pytest.raises(SystemExit) as exit_:
        main(["verify", str(out), "--workers", "1", "-q"])
    assert exit_.value.code not in (0, None)
    assert main(["shards", str(subset), "--out", str(tmp_path / "x"), "--split", "train=2", "-q"]) == 1


def test_shards_read_only_the_labeled_folder(labeled: Path, example_data: Path, tmp_path: Path):
    subset = derive(labeled, tmp_path / "labeled", 40)
    manifest = read_manifest(subset)
    manifest["config"]["vocab"] = str(tmp_path / "moved-away")  # the vocabulary is nowhere to be found
    (subset / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "shards"
    write_shards(subset, out, images_root=example_data, size=32, workers=1, progress=False)
    assert pq.read_table(out / "labels.parquet").equals(feather.read_table(subset / "labels.feather"))
    assert verify_shards(out) == []


STANDARD_READERS = """
import json, sys
from pathlib import Path
import datasets, wids
folder = Path(sys.argv[1])
splits = json.loads((folder / "manifest.json").read_text())["outputs"]["splits"]
loaded = datasets.load_dataset(str(folder), cache_dir=sys.argv[2])
assert sorted(loaded) == sorted(splits), (list(loaded), list(splits))
assert all(loaded[name].num_rows == split["samples"] for name, split in splits.items())
assert {"jpg", "json", "cls"} <= set(loaded["train"].features)
assert len(wids.ShardListDataset(str(folder / "val.index.json"))) == splits["val"]["samples"]
"""


def test_shards_folder_loads_with_hugging_face_datasets_and_wids(shards: Path, tmp_path: Path):
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    subprocess.run([sys.executable, "-c", STANDARD_READERS, str(shards), str(tmp_path / "cache")], env=env,
                   check=True, timeout=300)
    assert (shards / "README.md").read_text().startswith("---\nconfigs:\n")
