"""The worked examples in module docstrings must stay true."""

import doctest
import importlib

import pytest

MODULES = ["rag.config", "rag.errors", "rag.corpus", "rag.chunking", "rag.store", "rag.ingest", "rag.retrieval",
           "rag.answer", "rag.prompting", "rag.citations", "rag.pipeline", "rag.testing", "rag.app", "rag.models",
           "rag.generation.base"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
