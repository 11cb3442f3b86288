"""Errors a user can act on. Every message says what went wrong and what to do."""


class RagError(Exception):
    """Base class for errors shown to users (CLI prints the message, no traceback)."""


class ConfigError(RagError):
    """Invalid or unknown configuration."""


class CorpusError(RagError):
    """A corpus file that cannot be parsed; the message names the file and line."""


class ModelNotFoundError(RagError):
    """A model that is not installed or cannot be loaded offline."""


class MissingExtraError(RagError):
    """An optional dependency is missing; the message names the pip extra."""


class StoreError(RagError):
    """The vector store cannot be opened or used (e.g. already open in another process)."""


class GenerationError(RagError):
    """The LLM failed (out of memory, unsupported quantization, ...)."""


class Cancelled(RagError):
    """The request was cancelled (Stop, a new chat, a closed tab, a dropped HTTP client)."""


class EmptyIndexError(RagError):
    """A question asked of an index that holds no papers yet (nothing was looked up: it is not a refusal)."""


class InputError(RagError):
    """A bad question or request (empty, too long, ...)."""


def require(module: str, extra: str, purpose: str):
    """Import an optional heavy module or raise MissingExtraError naming the extra to install.

    >>> require("json", "dev", "testing").__name__
    'json'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{purpose} needs the '{module}' package: pip install 'paper-rag[{extra}]' (or re-run scripts/setup.sh). ({e})"
        ) from None
