"""What serving an encoder costs: size, compute, latency, throughput and memory on this device.

Measured on the served model (backbone + embedding head, as ``weaklabel export`` writes it), in
float32 (bf16 autocast on CUDA, as ``embed`` runs), with ``torch.inference_mode``:

- ``params``: parameters of the served model (``params_heads``: those of the task heads, apart).
- ``gmacs``: multiply-accumulates of one image at the input size, in billions, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2; matrix products and convolutions).
- ``latency_ms``: median wall time of a batch of 1, after warm-up, over 5 to 20 runs.
- ``throughput``: images per second of batches of 64 (64 / median batch time over 5 runs).
- ``load_average``, ``cores``: the machine's 1-minute load average as the timings end (this
  process's recent work included) and its cores; ``machine_loaded`` when the load is above half the
  cores: other work then competes for them, and the timings say more about it than the model.
- ``peak_memory_mb``: tensor memory at the peak of a batch-64 forward pass, weights and inputs
  included: CUDA's ``max_memory_allocated``; on CPU the same count made by ``TensorMemory`` (the
  process's resident set says little: freed memory stays resident and is reused).
- ``weights_mb``: bytes of the served model's float32 weights; ``checkpoint_mb``: the checkpoint
  file (optimizer state included).
"""

from __future__ import annotations

import os
import statistics
import time
import weakref
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

MB = 1 << 20
MIN_RUNS = 5  # a median of fewer timings is one slow run away from a wrong figure on a busy machine
LATENCY_RUNS, LATENCY_SECONDS = 20, 2.0
THROUGHPUT_BATCH, THROUGHPUT_RUNS, THROUGHPUT_SECONDS = 64, 5, 3.0


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def weight_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def count_macs(model: nn.Module, image_size: int, device: str | torch.device = "cpu") -> int:
    """Multiply-accumulates of one forward pass on a ``[1, 3, size, size]`` input."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(1, 3, image_size, image_size, device=device))
    return int(counter.get_total_flops()) // 2


def median_seconds(run: Callable[[], Any], device: torch.device, *, warmup: int, runs: int, budget: float) -> float:
    """Median wall time of ``run`` over ``MIN_RUNS`` to ``runs`` timed calls, more while within ``budget`` seconds."""
    for _ in range(warmup):
        run()
    _sync(device)
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < runs and (len(times) < MIN_RUNS or time.perf_counter() < deadline):
        start = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class TensorMemory(TorchFunctionMode):
    """Live and peak bytes of the tensor storages created by torch functions inside the ``with``.

    Each new output storage is counted until it is freed (a ``weakref.finalize`` on the storage),
    which is what CUDA's ``max_memory_allocated`` counts, on any device. (Measured equal to counting
    at the dispatcher, a private torch API, on resnet10t, mobilenetv3, ViT-tiny and EfficientNet-B0.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: set[int] = set()
        self.current = 0
        self.peak = 0

    def _free(self, key: int, size: int) -> None:
        self.live.discard(key)
        self.current -= size

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for value in _tensors(out):
            if isinstance(value, torch.Tensor):
                storage = value.untyped_storage()
                key = id(storage)
                if key not in self.live:
                    self.live.add(key)
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._free, key, storage.nbytes())
        return out


def _tensors(value: Any) -> list[Any]:
    """The leaves of a function's output: a tensor, or tensors in tuples, lists and dicts."""
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _tensors(item)]
    if isinstance(value, dict):
        return _tensors(list(value.values()))
    return [value]


def peak_memory_bytes(run: Callable[[], Any], model: nn.Module, inputs: torch.Tensor) -> tuple[int, str]:
    """(peak bytes of one call of ``run``, weights and inputs included; how it was measured)."""
    device = inputs.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device)), "cuda_max_memory_allocated"
    with TensorMemory() as tracker:
        run()
    peak_bytes = weight_bytes(model) + inputs.numel() * inputs.element_size() + tracker.peak
    return peak_bytes, "weights + inputs + peak tensors"


def measure(model: nn.Module, image_size: int, device: str | torch.device = "cpu", *,
            checkpoint: str | Path | None = None, heads: nn.Module | None = None) -> dict[str, Any]:
    """The efficiency figures of ``model`` (see the module docstring)."""
    device = torch.device(device)
    model = model.to(device).eval()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    one = torch.randn(1, 3, image_size, image_size, device=device)
    batch = torch.randn(THROUGHPUT_BATCH, 3, image_size, image_size, device=device)

    def forward(images: torch.Tensor) -> Callable[[], Any]:
        def run() -> Any:
            with torch.inference_mode(), autocast:
                return model(images)
        return run

    latency = median_seconds(forward(one), device, warmup=3, runs=LATENCY_RUNS, budget=LATENCY_SECONDS)
    batch_time = median_seconds(forward(batch), device, warmup=1, runs=THROUGHPUT_RUNS, budget=THROUGHPUT_SECONDS)
    load = machine_load()
    peak, how = peak_memory_bytes(forward(batch), model, batch)
    return {
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(), "image_size": image_size,
        "params": count_params(model), "params_heads": count_params(heads) if heads is not None else 0,
        "gmacs": count_macs(model, image_size, device) / 1e9,
        "latency_ms": latency * 1e3, "throughput": THROUGHPUT_BATCH / batch_time, **load,
        "peak_memory_mb": peak / MB, "peak_memory_method": how,
        "weights_mb": weight_bytes(model) / MB,
        "checkpoint_mb": Path(checkpoint).stat().st_size / MB if checkpoint is not None else None,
    }


def machine_load() -> dict[str, Any]:
    """The 1-minute load average (None where the system has none), the cores, and whether the load
    is above half of them."""
    cores = os.cpu_count() or 1
    try:
        load: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        load = None
    return {"load_average": load, "cores": cores, "machine_loaded": load is not None and load > cores / 2}


def load_note(efficiency: dict[str, Any]) -> str | None:
    """"machine loaded (load average X on N cores)" when the timings of ``efficiency`` were taken so."""
    if not efficiency.get("machine_loaded"):
        return None
    return f"machine loaded (load average {efficiency['load_average']:.1f} on {efficiency['cores']} cores)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
