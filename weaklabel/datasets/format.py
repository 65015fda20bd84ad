"""The shard format, shared by the writer and the verifier (and relied on by the loader).

A sample is three tar members with one key: ``{key}.{jpg|webp|png}`` (the image),
``{key}.json`` (``id, labels, label_names, scores, width, height`` and the carried columns) and,
when the listing has labels, ``{key}.cls`` (the top label id as ASCII digits, what timm reads).
Shards are ``{split}-{000000}.tar``, numbered from 0 per split. Tar headers are deterministic
(mtime 0, uid/gid 0, no user names), so the same samples always give byte-identical shards.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
SPLIT_NAME = re.compile(r"[A-Za-z0-9_]+")
IMAGE_EXTENSIONS = ("jpg", "webp", "png")
TAR_END = 2 * tarfile.BLOCKSIZE
DEFAULT_SPLITS = "train=0.9,val=0.05,test=0.05"


def sample_key(listing_id: str) -> str:
    """The id with characters outside ``[A-Za-z0-9_-]`` replaced by ``_``; when anything was
    replaced (or the id is empty) ``_`` and 8 hex digits of sha1(id) are appended, so two ids that
    differ only in unsafe characters still get different keys. Keys never hold dots, which
    WebDataset would read as the start of the extension."""
    safe = KEY_UNSAFE.sub("_", listing_id)
    if safe == listing_id and listing_id:
        return safe
    return f"{safe}_{hashlib.sha1(listing_id.encode('utf-8')).hexdigest()[:8]}"


def parse_splits(spec: str | Mapping[str, float]) -> dict[str, float]:
    """``"train=0.9,val=0.1"`` (or a mapping) → ordered {name: fraction}; fractions must sum to 1."""
    if isinstance(spec, str):
        pairs = [part.split("=", 1) for part in spec.split(",") if part.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError(f"splits must look like 'train=0.9,val=0.1', got {spec!r}")
        try:
            splits = {name.strip(): float(value) for name, value in pairs}
        except ValueError:
            raise ValueError(f"split fractions must be numbers, got {spec!r}") from None
        if len(splits) != len(pairs):
            raise ValueError(f"split names must be unique, got {spec!r}")
    else:
        splits = {str(name): float(value) for name, value in spec.items()}
    _check_splits(splits)
    return splits


def _check_splits(splits: dict[str, float]) -> None:
    if not splits:
        raise ValueError("name at least one split, like 'train=1'")
    for name, fraction in splits.items():
        if not SPLIT_NAME.fullmatch(name):
            raise ValueError(f"split name {name!r} may only hold letters, digits and '_'")
        if not 0 < fraction <= 1:
            raise ValueError(f"split {name!r} needs a fraction in (0, 1], got {fraction}")
    if abs(sum(splits.values()) - 1) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {sum(splits.values()):g} from {splits}")


def split_position(listing_id: str) -> float:
    """Where an id falls in [0, 1): the first 8 bytes of sha1(id); stable across runs and machines."""
    return int.from_bytes(hashlib.sha1(listing_id.encode("utf-8")).digest()[:8], "big") / 2**64


def split_of(listing_id: str, splits: Mapping[str, float]) -> str:
    """The split whose cumulative fraction range holds the id's position (the last one absorbs rounding)."""
    position, upper = split_position(listing_id), 0.0
    names = list(splits)
    for name in names[:-1]:
        upper += splits[name]
        if position < upper:
            return name
    return names[-1]


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


def sample_members(key: str, ext: str, image: bytes, meta: bytes, cls: str | None) -> list[tuple[str, bytes]]:
    members = [(f"{key}.{ext}", image), (f"{key}.json", meta)]
    if cls is not None:
        members.append((f"{key}.cls", cls.encode("ascii")))
    return members


def top_label(labels: Sequence[int], scores: Sequence[float]) -> int:
    """The ``cls`` of a sample: the label with the highest score (the first one on ties)."""
    return labels[max(range(len(labels)), key=scores.__getitem__)]


def member_bytes(name: str, size: int) -> int:
    """Bytes a member takes in the tar: its header block(s) and its data padded to 512."""
    header = tarfile.BLOCKSIZE if _plain_ustar(name, size) else len(_header(name, size))
    return header + _padded(size)


def tar_bytes(members_bytes: int) -> int:
    """Size of a tar holding members of ``members_bytes``: end blocks, then padding to a record."""
    return -(-(members_bytes + TAR_END) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


@dataclass(frozen=True)
class TarStats:
    samples: int
    bytes: int
    sha256: str


def write_tar(handle: BinaryIO, samples: Iterable[Sequence[tuple[str, bytes]]]) -> TarStats:
    """Write samples (lists of (name, data) members) as a tar to ``handle``, hashing as it goes.

    Byte for byte what ``tarfile`` writes for these members (PAX format), without its per-member
    file-object machinery, and without reading the file back to hash it."""
    digest, count, written = hashlib.sha256(), 0, 0
    for members in samples:
        blocks = []
        for name, data in members:
            blocks += (_header(name, len(data)), data, bytes(_padded(len(data)) - len(data)))
        sample = b"".join(blocks)  # one write and one hash update per sample
        handle.write(sample)
        digest.update(sample)
        written += len(sample)
        count += 1
    end = bytes(tar_bytes(written) - written)
    handle.write(end)
    digest.update(end)
    return TarStats(count, written + len(end), digest.hexdigest())


def _padded(size: int) -> int:
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _plain_ustar(name: str, size: int) -> bool:
    """Whether a member fits a single ustar header block (no PAX extension needed)."""
    return len(name) <= 100 and name.isascii() and size < 8**11


def _header(name: str, size: int) -> bytes:
    """The member header ``tarfile`` writes (PAX format, mode 0444, mtime 0, uid/gid 0).

    Names of at most 100 ASCII characters need no PAX extension, so their plain ustar block is
    built directly (``TarInfo.tobuf`` costs ~10x more, and every sample has three members)."""
    if not _plain_ustar(name, size):
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o444, 0
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    block = bytearray(tarfile.BLOCKSIZE)
    block[: len(name)] = name.encode("ascii")
    block[100:148] = b"0000444\x000000000\x000000000\x00" + b"%011o\x00" % size + b"00000000000\x00"
    block[148:156] = b"        "  # the checksum is computed with its own field as spaces
    block[156:157] = tarfile.REGTYPE
    block[257:265] = tarfile.POSIX_MAGIC  # user/group names and device numbers stay empty
    block[148:155] = b"%06o\x00" % sum(block)
    return bytes(block)


def timm_info(name: str, splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """timm's ``_info.json`` (read by ``timm.data.readers.reader_wds``): shard names and lengths per split."""
    return {
        "name": name,
        "splits": {
            split: {
                "name": split,
                "num_samples": sum(shard["samples"] for shard in shards),
                "filenames": [shard["name"] for shard in shards],
                "shard_lengths": [shard["samples"] for shard in shards],
            }
            for split, shards in splits.items()
        },
    }


def wids_index(name: str, shards: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A wids shard index; urls are relative, which wids resolves against the index file's folder."""
    return {
        "__kind__": "wids-shard-index-v1",
        "wids_version": 1,
        "name": name,
        "shardlist": [{"url": shard["name"], "nsamples": shard["samples"], "filesize": shard["bytes"]}
                      for shard in shards],
    }


def shard_samples(path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: data}) for each run of consecutive members sharing a key, read with ``tarfile``
    (the loader's faster reader comes with torch, which the writer and the verifier do without)."""
    key, members = None, {}
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            base, _, extension = info.name.partition(".")
            if key is not None and base != key:
                yield key, members
                members = {}
            key = base
            handle = tar.extractfile(info)
            members[extension] = handle.read() if handle else b""
    if key is not None:
        yield key, members
