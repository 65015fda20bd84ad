"""After training: ``load_encoder``, ``weaklabel embed`` (shards and image folders) and ``weaklabel export``."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from weaklabel.artifacts import read_embeddings
from weaklabel.cli import main
from weaklabel.datasets.loader import iter_samples
from weaklabel.training import load_encoder, train
from weaklabel.training.embed import image_transform

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shards(example_shards: Path) -> Path:
    return example_shards


@pytest.fixture(scope="module")
def checkpoint(shards: Path, tmp_path_factory) -> Path:
    """Three steps with EMA: enough for the EMA and the trained weights to differ."""
    out = tmp_path_factory.mktemp("run")
    train(shards, out, model="resnet10t", image_size=32, embed_dim=16, batch_size=8, steps=3, workers=0,
          ema=0.5, tasks=["true_type:softmax"], progress=False, shuffle_buffer=10, lr=0.01)
    return out / "last.pt"


@pytest.fixture(scope="module")
def val_samples(shards: Path) -> list[dict]:
    return list(iter_samples(shards, "val"))


def test_load_encoder_gives_an_eval_model_with_embed_and_heads(checkpoint: Path, val_samples: list[dict]):
    model, config = load_encoder(checkpoint, "cpu")
    assert not model.training and config["weights"] == "ema" and config["model"] == "resnet10t"
    assert [t["name"] for t in config["tasks"]] == ["labels", "true_type"]
    assert config["image"]["size"] == 32 and len(config["label_names"]) == len(config["tasks"][0]["classes"])
    transform = image_transform(config)
    images = torch.stack([transform(s["image"]) for s in val_samples[:4]])
    with torch.no_grad():
        embedding = model.embed(images)
        outputs = model(images)
    assert embedding.shape == (4, 16)
    assert torch.allclose(embedding.norm(dim=1), torch.ones(4), atol=1e-5)
    assert outputs["true_type"].shape == (4, len(config["tasks"][1]["classes"]))
    assert torch.allclose(model.heads["labels"](embedding * model.head_scale), outputs["labels"])
    trained, trained_config = load_encoder(checkpoint, "cpu", ema=False)
    assert trained_config["weights"] == "model"
    with torch.no_grad():
        assert not torch.allclose(trained.embed(images), embedding)


def test_embed_shards_keeps_ids_labels_and_carried_columns(checkpoint: Path, shards: Path, tmp_path: Path,
                                                          val_samples: list[dict]):
    out = tmp_path / "val.parquet"
    assert main(["embed", str(checkpoint), str(shards), "--out", str(out), "--split", "val",
                 "--batch-size", "7", "-q"]) == 0
    frame, matrix = read_embeddings(out)
    assert list(frame["id"]) == [s["json"]["id"] for s in val_samples]
    assert matrix.shape == (len(val_samples), 16) and matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert [list(v) for v in frame["labels"]] == [s["json"]["labels"] for s in val_samples]
    assert list(frame["true_type"]) == [s["json"]["true_type"] for s in val_samples]
    assert "scores" not in frame.columns
    model, config = load_encoder(checkpoint)
    with torch.no_grad():
        first = model.embed(image_transform(config)(val_samples[0]["image"])[None])[0].numpy()
    assert np.allclose(matrix[0], first, atol=1e-5)


def test_embed_an_image_folder_by_relative_path(checkpoint: Path, example_data: Path, tmp_path: Path, capsys):
    folder = tmp_path / "images"
    (folder / "nested").mkdir(parents=True)
    sources = sorted((example_data / "images").glob("*"))[:5]
    for i, source in enumerate(sources):
        shutil.copy(source, (folder / "nested" if i % 2 else folder) / source.name)
    (folder / "broken.jpg").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("not an image either")
    out = tmp_path / "folder.parquet"
    assert main(["embed", str(checkpoint), str(folder), "--out", str(out), "--batch-size", "2", "-q"]) == 0
    printed = capsys.readouterr()
    assert "1 unreadable images left out" in printed.out and "unreadable: broken.jpg" in printed.err
    frame, matrix = read_embeddings(out)
    expected = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                      if p.suffix != ".txt" and p.name != "broken.jpg" and p.is_file())
    assert list(frame["id"]) == expected and len(expected) == 5
    assert any(i.startswith("nested/") for i in expected)
    assert matrix.shape == (5, 16) and np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


def test_embed_an_image_folder_applies_exif_orientation(checkpoint: Path, tmp_path: Path):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    upright = Image.new("RGB", (40, 64), (200, 30, 30))
    upright.paste((20, 20, 220), (0, 0, 40, 20))  # a blue band on top: orientation matters
    upright.save(folder / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; viewers turn it 90 degrees clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(folder / "rotated.png", exif=exif)
    out = tmp_path / "exif.parquet"
    assert main(["embed", str(checkpoint), str(folder), "--out", str(out), "-q"]) == 0
    frame, matrix = read_embeddings(out)
    assert list(frame["id"]) == ["rotated.png", "upright.png"]
    assert np.allclose(matrix[0], matrix[1], atol=1e-6)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_pytorch(checkpoint: Path, tmp_path: Path, fmt: str, capsys, val_samples: list[dict]):
    out = tmp_path / f"encoder.{'onnx' if fmt == 'onnx' else 'pt'}"
    assert main(["export", str(checkpoint), "--format", fmt, "--out", str(out)]) == 0
    assert "max abs diff" in capsys.readouterr().out
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["max_abs_diff"] <= 1e-3 and sidecar["input"]["name"] == "images"
    assert sidecar["output"]["shape"] == ["batch", 16]
    model, config = load_encoder(checkpoint)
    transform = image_transform(config)
    images = torch.stack([transform(s["image"]) for s in val_samples[:5]])  # another batch size than traced
    with torch.no_grad():
        expected = model.embed(images).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(["embedding"], {"images": images.numpy()})[0]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
            got = torch.jit.load(str(out))(images).detach().numpy()
    assert np.abs(got - expected).max() < 1e-4


def test_export_fails_when_outputs_differ(checkpoint: Path, tmp_path: Path, capsys, monkeypatch):
    from weaklabel.training import export

    real = export._torchscript
    monkeypatch.setattr(export, "_torchscript", lambda *args: real(*args) + 0.01)
    assert main(["export", str(checkpoint), "--format", "torchscript", "--out", str(tmp_path / "e.pt")]) == 1
    assert "differs from PyTorch by 1.00e-02" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(checkpoint), "--format", "tflite", "--out", str(tmp_path / "e.tflite")])
