"""Property tests of the hand-written tar writer and reader against the standard library's tarfile.

They are kept because they measured 2-5x faster than tarfile and webdataset on the shard hot paths;
these tests hold them to tarfile's bytes for any names and sizes a shard may hold.
"""

from __future__ import annotations

import io
import tarfile

from hypothesis import given, settings
from hypothesis import strategies as st

from weaklabel.datasets.format import member_bytes, tar_bytes, write_tar
from weaklabel.datasets.loader import tar_samples

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None)
KEY_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="./\\")
KEYS = st.one_of(st.text("abcXYZ019_-", min_size=1, max_size=20), st.text(KEY_CHARS, min_size=1, max_size=150))
EXTENSIONS = st.sampled_from(["jpg", "png", "webp", "json", "cls"])
DATA = st.one_of(st.binary(max_size=1100), st.integers(0, 3000).map(lambda n: bytes([n % 251]) * n))


@st.composite
def samples(draw) -> list[list[tuple[str, bytes]]]:
    keys = draw(st.lists(KEYS, min_size=0, max_size=6, unique=True))
    return [[(f"{key}.{ext}", draw(DATA)) for ext in draw(st.lists(EXTENSIONS, min_size=1, max_size=3, unique=True))]
            for key in keys]


def tarfile_bytes(members: list[list[tuple[str, bytes]]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (member for sample in members for member in sample):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o444, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@SETTINGS
@given(samples())
def test_write_tar_writes_tarfiles_bytes(members):
    ours = io.BytesIO()
    stats = write_tar(ours, members)
    assert ours.getvalue() == tarfile_bytes(members)
    planned = sum(member_bytes(name, len(data)) for sample in members for name, data in sample)
    assert stats.bytes == len(ours.getvalue()) == tar_bytes(planned)
    assert stats.samples == len(members)


@SETTINGS
@given(samples(), st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]))
def test_tar_samples_reads_what_tarfile_wrote(tmp_path_factory, members, fmt):
    path = tmp_path_factory.mktemp("tar") / "t.tar"
    with tarfile.open(path, "w", format=fmt) as tar:
        for name, data in (member for sample in members for member in sample):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    read = list(tar_samples([{"url": str(path)}], frozenset(["jpg", "png", "webp", "json", "cls"])))
    expected = [{"__key__": name.rpartition(".")[0], "__url__": str(path),
                 **{n.rpartition(".")[2]: d for n, d in sample}} for sample in members for name in [sample[0][0]]]
    assert read == expected
