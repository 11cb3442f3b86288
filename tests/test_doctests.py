"""The worked examples in module docstrings must stay true: every module of rag, serving and eval."""

import doctest
import importlib
import pkgutil

import pytest

import bench
import eval as eval_pkg
import rag
import serving

MODULES = sorted(
    m.name for pkg in (rag, serving, eval_pkg, bench) for m in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + ".")
)


def test_every_package_is_collected():
    assert {"rag.answer.pipeline", "rag.search.store.ranking", "serving.ui", "eval.questions", "eval.compare", "rag.generation.hf",
            "bench.common", "bench.synthetic"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
