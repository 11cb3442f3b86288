"""What every ``rag`` command shares: the common options and building the App from them.

A leaf module (it imports only ``rag``): the command modules of ``serving`` and ``eval`` use it,
and ``serving.cli`` only wires them together, so nothing imports its way back up.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser(); add_common(p)
    >>> args = p.parse_args(["--set", "retrieval.k=8", "--data-dir", "/tmp/x"])
    >>> s = settings_from(args); (s.retrieval.k, str(s.data_dir))
    (8, '/tmp/x')
    >>> parse_overrides(["retrieval.k=["])
    Traceback (most recent call last):
    ...
    rag.errors.ConfigError: --set retrieval.k=[: not a valid value (write it as YAML, e.g. 8, true, [a, b] or "text")
"""

from __future__ import annotations

import argparse
import os

import yaml

from rag.errors import ConfigError, RagError


def add_common(p: argparse.ArgumentParser, inherit: bool = False) -> None:
    """--config, --data-dir, --set, -v. ``inherit``: leave unset options to a parent parser (sub-sub-commands)."""
    d = (lambda v: argparse.SUPPRESS) if inherit else (lambda v: v)
    p.add_argument("--config", default=d(os.environ.get("RAG_CONFIG", "cpu")), help="preset (cpu, gpu, large, cpu-mpnet) or YAML file (default: cpu)")
    p.add_argument("--data-dir", default=d(None), help="index and state folder (default: $RAG_DATA_DIR or ./rag_data)")
    p.add_argument("--set", dest="overrides", action="append", default=d([]), metavar="KEY=VALUE",
                   help="override a setting, e.g. --set retrieval.k=8 (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", default=d(False), help="log progress and timings")


def parse_overrides(items: list[str]) -> dict:
    """``KEY=VALUE`` strings (values are YAML) as settings overrides."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set needs KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value) if value else value
        except yaml.YAMLError:
            raise ConfigError(f"--set {item}: not a valid value (write it as YAML, e.g. 8, true, [a, b] or \"text\")") from None
    return out


def parse_filters(items: list[str]) -> dict:
    """``--filter`` expressions (``category=cs.CL``, ``year>=2024``) as search filters (``rag.search.filters``);
    a field given twice: any of the values (years: the conditions intersect)."""
    from rag.search.filters import parse_expressions

    return parse_expressions(items)


def overrides_from(args) -> dict:
    """The --set and --data-dir options as settings overrides."""
    overrides = parse_overrides(getattr(args, "overrides", []))
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    return overrides


def settings_from(args):
    from rag.config import Settings

    return Settings.load(getattr(args, "config", "cpu"), **overrides_from(args))


def load_app(args):
    import rag

    return rag.load(getattr(args, "config", "cpu"), **overrides_from(args))
