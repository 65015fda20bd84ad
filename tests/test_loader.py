from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import webdataset as wds
from PIL import Image
from torchvision import transforms

from weaklabel.datasets.loader import (
    ShardDataset,
    ShardInfo,
    ToNormalizedTensor,
    carry_classes,
    decode_sample,
    iter_samples,
    make_dataset,
    make_loader,
    tar_samples,
)

LABELS = ["red", "mug", "cotton", "dress", "ring"]
TYPES = ["Bags", "Shirts", "Shoes"]
EQUAL = [15, 15, 15, 15]
UNEVEN = [20, 13, 9, 14, 4]


def _jpeg(i: int, size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (i * 4 % 256, 100, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _meta(i: int) -> dict:
    labels = sorted({i % 5, (i * 3) % 5}) if i % 7 else []
    meta = {"id": f"L{i}", "labels": labels, "label_names": [LABELS[x] for x in labels],
            "scores": [0.5] * len(labels), "width": 32, "height": 32}
    if i % 6 == 1:
        meta["articleType"] = None
    elif i % 6 != 2:  # i % 6 == 2: no articleType key at all
        meta["articleType"] = TYPES[i % 3]
    return meta


def write_folder(folder: Path, shard_sizes: Sequence[int], split: str = "train") -> list[str]:
    """Shards as the writer lays them out; returns the keys in shard order."""
    folder.mkdir(parents=True)
    keys, names, i = [], [], 0
    for index, size in enumerate(shard_sizes):
        names.append(f"{split}-{index:06d}.tar")
        with wds.TarWriter(str(folder / names[-1])) as tar:
            for _ in range(size):
                meta = _meta(i)
                sample = {"__key__": f"k{i:04d}", "jpg": _jpeg(i), "json": json.dumps(meta).encode()}
                if meta["labels"]:
                    sample["cls"] = str(meta["labels"][0]).encode()
                tar.write(sample)
                keys.append(sample["__key__"])
                i += 1
    info = {"name": folder.name, "splits": {split: {
        "name": split, "num_samples": i, "filenames": names, "shard_lengths": list(shard_sizes)}}}
    (folder / "_info.json").write_text(json.dumps(info))
    pd.DataFrame({"label_id": range(len(LABELS)), "name": LABELS, "aliases": [[]] * len(LABELS),
                  "support": [10] * len(LABELS), "tier": ["head"] * len(LABELS)}).to_parquet(folder / "labels.parquet")
    return keys


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("shards") / "equal"
    return folder, write_folder(folder, EQUAL)


@pytest.fixture(scope="module")
def uneven(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("shards") / "uneven"
    return folder, write_folder(folder, UNEVEN)


def small(folder: Path, **kwargs: Any) -> ShardDataset:
    """8 px images, with the json of each sample."""
    return make_dataset(folder, image_size=8, return_meta=True, **kwargs)


def ids_of(samples: Iterable[tuple[Any, ...]]) -> list[str]:
    return [meta["id"] for _, _, meta in samples]


def all_ids(keys: Sequence[str]) -> list[str]:
    return sorted(f"L{i}" for i in range(len(keys)))


def test_shard_info(shards: tuple[Path, list[str]]) -> None:
    folder, keys = shards
    info = ShardInfo.load(folder)
    assert info.label_names == LABELS
    assert info.num_samples == {"train": len(keys)}
    assert info.shard_urls("train") == [str(folder / f"train-{i:06d}.tar") for i in range(len(EQUAL))]


def test_clear_errors(shards: tuple[Path, list[str]], tmp_path: Path) -> None:
    folder, _ = shards
    with pytest.raises(ValueError, match=r"split 'val' is not in .*\['train'\]"):
        make_dataset(folder, "val")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ShardInfo.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="_info.json is missing"):
        ShardInfo.load(tmp_path)
    broken = tmp_path / "broken"
    write_folder(broken, [3, 3])
    (broken / "train-000001.tar").unlink()
    with pytest.raises(FileNotFoundError, match="1 shard.*missing"):
        ShardInfo.load(broken)


def test_multi_hot_and_carried_targets(shards: tuple[Path, list[str]]) -> None:
    folder, keys = shards
    classes = ["Bags", "Shirts"]  # "Shoes" is unknown to the encoder
    dataset = small(folder, training=False, carry_targets={"articleType": classes})
    seen = 0
    for _, targets, meta in dataset:
        i = int(meta["id"][1:])
        expected = torch.zeros(len(LABELS))
        expected[_meta(i)["labels"]] = 1
        assert targets["labels"].dtype == torch.float32 and torch.equal(targets["labels"], expected)
        article = _meta(i).get("articleType")
        index = classes.index(article) if article in classes else -1
        assert targets["articleType"].dtype == torch.int64 and targets["articleType"].item() == index
        seen += 1
    assert seen == len(keys)


def test_num_labels_widens_and_checks(shards: tuple[Path, list[str]]) -> None:
    folder, _ = shards
    _, targets, _ = next(iter(small(folder, training=False, num_labels=9)))
    assert targets["labels"].shape == (9,)
    with pytest.raises(ValueError, match="outside 0..2"):
        ids_of(small(folder, training=False, num_labels=3))


def test_carry_classes(shards: tuple[Path, list[str]]) -> None:
    folder, _ = shards
    assert carry_classes(folder, "articleType") == TYPES
    assert carry_classes(folder, "nope") == []


def test_shuffle_is_deterministic_by_seed_and_epoch(shards: tuple[Path, list[str]]) -> None:
    folder, keys = shards
    first = ids_of(small(folder, seed=1, epoch=0, shuffle_buffer=20))
    assert first == ids_of(small(folder, seed=1, epoch=0, shuffle_buffer=20))
    assert sorted(first) == all_ids(keys)
    assert first != [f"L{i}" for i in range(len(keys))]  # not in shard order
    assert first != ids_of(small(folder, seed=1, epoch=1, shuffle_buffer=20))
    assert first != ids_of(small(folder, seed=2, epoch=0, shuffle_buffer=20))
    dataset = small(folder, seed=1, epoch=0, shuffle_buffer=20)
    dataset.set_epoch(1)
    assert ids_of(dataset) == ids_of(small(folder, seed=1, epoch=1, shuffle_buffer=20))


def test_two_workers_read_each_sample_once(shards: tuple[Path, list[str]]) -> None:
    folder, keys = shards
    loader = make_loader(small(folder, epoch=3), batch_size=7, num_workers=2)
    seen = []
    for images, targets, metas in loader:
        assert images.shape[1:] == (3, 8, 8) and targets["labels"].shape == (len(images), len(LABELS))
        seen += [meta["id"] for meta in metas]
    assert sorted(seen) == all_ids(keys)


def test_set_epoch_reaches_persistent_workers(shards: tuple[Path, list[str]]) -> None:
    folder, _ = shards
    dataset = small(folder, seed=5)
    loader = make_loader(dataset, batch_size=60, num_workers=1)

    def ids() -> list[str]:
        return [meta["id"] for _, _, metas in loader for meta in metas]

    first = ids()
    assert ids() == first
    dataset.set_epoch(1)
    assert ids() != first


def by_rank(monkeypatch: pytest.MonkeyPatch, folder: Path, world_size: int, **kwargs: Any) -> list[list[str]]:
    """What each simulated rank (RANK / WORLD_SIZE, as torchrun sets them) reads in one epoch."""
    monkeypatch.setenv("WORLD_SIZE", str(world_size))
    result = []
    for rank in range(world_size):
        monkeypatch.setenv("RANK", str(rank))
        result.append(ids_of(small(folder, **kwargs)))
    return result


def test_nodes_split_evaluation_exactly(monkeypatch: pytest.MonkeyPatch, uneven: tuple[Path, list[str]]) -> None:
    folder, keys = uneven
    ranks = by_rank(monkeypatch, folder, 2, training=False)
    assert not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == all_ids(keys)


def test_nodes_split_training_disjoint(monkeypatch: pytest.MonkeyPatch, shards: tuple[Path, list[str]]) -> None:
    folder, keys = shards
    ranks = by_rank(monkeypatch, folder, 2, seed=4)
    assert len(ranks[0]) == len(ranks[1]) == len(keys) // 2
    assert sorted(ranks[0] + ranks[1]) == all_ids(keys)


def test_nodes_get_equal_batches_from_uneven_shards(monkeypatch: pytest.MonkeyPatch,
                                                    uneven: tuple[Path, list[str]]) -> None:
    folder, keys = uneven
    for epoch in range(3):
        ranks = by_rank(monkeypatch, folder, 2, epoch=epoch)
        assert len(ranks[0]) == len(ranks[1]) == len(keys) // 2
    monkeypatch.setenv("WORLD_SIZE", "2")
    batches = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        batches.append(sum(1 for _ in make_loader(small(folder), batch_size=4, num_workers=2)))
    assert batches[0] == batches[1]


def test_resample_yields_an_epoch_of_samples(uneven: tuple[Path, list[str]]) -> None:
    folder, keys = uneven
    assert len(ids_of(small(folder, resample=True))) == len(keys)


def test_iter_samples_in_shard_order(shards: tuple[Path, list[str]]) -> None:
    folder, keys = shards
    samples = list(iter_samples(folder, "train"))
    assert [s["key"] for s in samples] == keys
    assert samples[5]["json"] == _meta(5)
    image = samples[5]["image"]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (32, 32)
    assert abs(image.getpixel((16, 16))[0] - 20) <= 3


def test_transform_is_applied(shards: tuple[Path, list[str]]) -> None:
    folder, _ = shards
    dataset = make_dataset(folder, training=False, transform=lambda image: torch.tensor(image.size))
    image, targets = next(iter(dataset))
    assert image.tolist() == [32, 32] and set(targets) == {"labels"}
    default, _ = next(iter(make_dataset(folder, training=False, image_size=24)))
    assert default.shape == (3, 24, 24) and default.dtype == torch.float32


def test_to_normalized_tensor_matches_torchvision() -> None:
    image = Image.open(io.BytesIO(_jpeg(9, 40)))
    reference = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    assert torch.allclose(ToNormalizedTensor()(image), reference(image), atol=1e-5)


def test_draft_decodes_large_jpegs_smaller() -> None:
    sample = {"__key__": "a", "jpg": _jpeg(1, 128), "json": b"{}"}
    assert decode_sample(sample, draft_size=32)["image"].size == (32, 32)
    assert decode_sample(sample, draft_size=40)["image"].size == (64, 64)
    assert decode_sample(sample, draft_size=100)["image"].size == (128, 128)
    assert decode_sample(sample)["image"].size == (128, 128)


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tar_samples_match_webdataset(tmp_path: Path, fmt: int) -> None:
    names = ["a.jpg", "a.json", "a.cls", "dir/b.JPG", "dir/b.json", "noext", "d" * 60 + "/" + "é" * 50 + ".json",
             "d" * 60 + "/" + "é" * 50 + ".png", "c.seg.png", "c.json"]
    if fmt == tarfile.USTAR_FORMAT:  # no long or non-ASCII names, but a prefix field
        names = [name.replace("é", "e") for name in names]
    path = tmp_path / "t.tar"
    with tarfile.open(path, "w", format=fmt) as tar:
        tar.addfile(tarfile.TarInfo("folder"), None)  # not a regular file
        for i, name in enumerate(names):
            info = tarfile.TarInfo(name)
            info.size = 700 + i
            tar.addfile(info, io.BytesIO(bytes([i]) * info.size))
    wanted = {"jpg", "json", "png"}
    ours = list(tar_samples([{"url": str(path)}], frozenset(wanted)))
    reference = wds.tarfile_to_samples(select_files=lambda n: n.rpartition("/")[2].partition(".")[2].lower() in wanted)
    assert ours == list(reference([{"url": str(path)}]))
    assert [sample["__key__"] for sample in ours] == ["a", "dir/b", "d" * 60 + "/" + names[6][61:-5], "c"]


def test_tar_samples_reject_a_corrupt_shard(tmp_path: Path) -> None:
    path = tmp_path / "bad.tar"
    path.write_bytes(b"x" * 1024)
    with pytest.raises(ValueError, match="corrupt header"):
        list(tar_samples([{"url": str(path)}]))


def test_spawned_workers_follow_the_epoch(shards: tuple[Path, list[str]]) -> None:
    folder, keys = shards
    dataset = small(folder, seed=5)
    loader = make_loader(dataset, batch_size=60, num_workers=1, multiprocessing_context="spawn")
    first = [meta["id"] for _, _, metas in loader for meta in metas]
    dataset.set_epoch(1)
    second = [meta["id"] for _, _, metas in loader for meta in metas]
    assert sorted(first) == sorted(second) and first != second and len(first) == len(keys)
