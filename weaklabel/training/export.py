"""``weaklabel export``: the encoder alone (backbone + embedding head → normalized embedding) as ONNX or TorchScript.

The exported graph takes ``images`` (float32 ``[batch, 3, size, size]``, normalized with the
mean/std recorded in the sidecar ``FILE.json``) and returns ``embedding`` (``[batch, embed_dim]``,
unit length); the batch axis is dynamic. After writing, the file is loaded back (onnxruntime for
ONNX, ``torch.jit.load`` for TorchScript) and run on a batch of another size than the one it was
traced with; its output must match PyTorch's within ``tolerance`` (max abs difference).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts import write_json
from .embed import load_encoder
from .models import EmbeddingModel

FORMATS = ("onnx", "torchscript")


def export_encoder(checkpoint: str | Path, out: str | Path, *, format: str = "onnx", ema: bool | None = None,
                   opset: int = 17, batch_size: int = 2, tolerance: float = 1e-3) -> dict[str, Any]:
    """Write the encoder of ``checkpoint`` to ``out``; return ``{"path", "format", "max_abs_diff", ...}``.

    Raises ``ValueError`` when the exported model's output differs from PyTorch's by more than
    ``tolerance`` (the file is kept for inspection).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model, config = load_encoder(checkpoint, "cpu", ema=ema)
    module = EmbeddingModel(model).eval()
    size = config["image"]["size"]
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(batch_size, 3, size, size, generator=generator)
    check = torch.randn(batch_size + 1, 3, size, size, generator=generator)
    with torch.no_grad():
        expected = module(check).numpy()
        if format == "torchscript":
            got = _torchscript(module, example, check, out)
        else:
            got = _onnx(module, example, check, out, opset)
    diff = float(np.abs(got - expected).max())
    summary = {"path": str(out), "format": format, "max_abs_diff": diff, "tolerance": tolerance,
               "model": config["model"], "embed_dim": config["embed_dim"], "weights": config["weights"],
               "step": config["step"], "input": {"name": "images", "shape": ["batch", 3, size, size],
                                                 "mean": config["image"]["mean"], "std": config["image"]["std"]},
               "output": {"name": "embedding", "shape": ["batch", config["embed_dim"]], "normalized": True},
               "checkpoint": str(checkpoint)}
    write_json(out.with_name(out.name + ".json"), summary)
    if diff > tolerance:
        raise ValueError(f"the exported {format} model differs from PyTorch by {diff:.2e} > {tolerance:g}")
    return summary


def _torchscript(module: torch.nn.Module, example: torch.Tensor, check: torch.Tensor, out: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings
        traced = torch.jit.trace(module, example)
        torch.jit.save(traced, str(out))
        loaded = torch.jit.load(str(out), map_location="cpu")
    return loaded(check).numpy()


def _onnx(module: torch.nn.Module, example: torch.Tensor, check: torch.Tensor, out: Path, opset: int) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("ONNX export needs onnx and onnxruntime: pip install 'weaklabel[export]'") from error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(out), dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=["embedding"],
                          dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"}})
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return session.run(["embedding"], {"images": check.numpy()})[0]
