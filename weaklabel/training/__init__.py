"""The training stage: timm backbone + embedding head + task heads, trained on WebDataset shards.

``train`` (``weaklabel train``) writes a run folder; ``embed`` (``weaklabel embed``) precomputes
embeddings; ``export_encoder`` (``weaklabel export``) writes the encoder as ONNX or TorchScript;
``load_encoder`` gives the evaluator a trained model.
"""

from .embed import embed, load_encoder
from .export import export_encoder
from .loop import TrainConfig, train
from .models import EmbeddingModel, Encoder, Task

__all__ = ["EmbeddingModel", "Encoder", "Task", "TrainConfig", "embed", "export_encoder", "load_encoder", "train"]
