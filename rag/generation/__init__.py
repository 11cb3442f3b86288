"""Answer-generating LLM backends behind one interface (``Generator``).

Example:
    >>> from rag.config import Settings
    >>> s = Settings.load("cpu")  # doctest: +SKIP
    >>> gen = build_generator(s.generation, s.cache_dir)  # doctest: +SKIP
    >>> gen.complete([{"role": "user", "content": "What is RAG?"}], max_new_tokens=40)  # doctest: +SKIP
    'Retrieval-augmented generation ...'
"""

from __future__ import annotations

from pathlib import Path

from rag.config import GenerationSettings
from rag.errors import ConfigError
from rag.generation.base import Generator

__all__ = ["Generator", "build_generator"]


def build_generator(settings: GenerationSettings, cache_dir: Path) -> Generator:
    """Load the model named in ``settings`` with the backend ``settings.backend``."""
    if settings.backend == "llamacpp":
        from rag.generation.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator(settings, Path(cache_dir))
    if settings.backend == "transformers":
        from rag.generation.hf import TransformersGenerator

        return TransformersGenerator(settings, Path(cache_dir))
    if settings.backend == "openai":
        from rag.generation.openai_http import OpenAIGenerator

        return OpenAIGenerator(settings)
    raise ConfigError(f"unknown generation backend '{settings.backend}': use llamacpp, transformers or openai")
