"""The `rag` command line: one-way dispatch, clear errors for bad options, tolerant input, presets."""

from __future__ import annotations

import io
import sys

import pytest

import rag
from rag.config import CONFIG_DIR, Settings
from serving import cli


def test_every_command_dispatches_through_its_handler():
    parser = cli.build_parser()
    for argv in (["ingest"], ["search", "q"], ["ask", "q"], ["chat"], ["serve"], ["eval"], ["eval", "validate", "f"],
                 ["eval", "compare", "a", "b"]):
        assert callable(parser.parse_args(argv).handler), argv


def test_eval_does_not_import_the_serving_layer():
    import ast
    import pathlib

    for path in pathlib.Path(cli.__file__).resolve().parent.parent.joinpath("eval").rglob("*.py"):
        tree = ast.parse(path.read_text())
        mods = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module] + \
               [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in mods if m.split(".")[0] == "serving"], path


def test_bad_set_value_is_one_line_not_a_traceback(capsys):
    assert cli.main(["search", "x", "--set", "retrieval.k=["]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --set retrieval.k=[: not a valid value") and "Traceback" not in err


def test_eval_options_before_validate_are_kept():
    args = cli.build_parser().parse_args(["eval", "--config", "gpu", "--data-dir", "/tmp/d", "validate", "f.jsonl"])
    assert (args.config, args.data_dir, args.file) == ("gpu", "/tmp/d", "f.jsonl")


def test_chat_survives_input_that_is_not_utf8(monkeypatch, capsys, tmp_path):
    from rag.testing import FakeEmbedder, FakeGenerator
    from serving import cmd_ask

    app = rag.load(None, data_dir=tmp_path, embedder=FakeEmbedder(), generator=FakeGenerator())
    app.ingest(["data/sample"], progress=False)
    monkeypatch.setattr(cmd_ask, "load_app", lambda args: app)
    raw = b"Which benchmark evaluates Chinese multimodal math? \xff\xfe\n\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    args = cli.build_parser().parse_args(["chat"])
    assert args.handler(args) == 0
    assert "CMM-Math" in capsys.readouterr().out


@pytest.mark.parametrize("preset", sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
def test_every_preset_validates(preset):
    s = Settings.load(preset)
    assert s.generation.model and s.embedding.model


@pytest.mark.parametrize("preset", sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
def test_every_preset_scores_evidence_with_the_model_the_thresholds_are_calibrated_for(preset):
    # the answerability and list thresholds are all-minilm-l6-v2 cosines, whatever model retrieves (gpu: bge-base)
    s = Settings.load(preset)
    assert (s.answer.evidence_model or s.embedding.model) == "all-minilm-l6-v2"


def test_gpu_preset_is_the_gpu_path():
    s = Settings.load("gpu")
    assert (s.generation.backend, s.generation.quantization, s.embedding.device) == ("transformers", "4bit", "cuda")


def test_secrets_stay_out_of_reports_and_hashes():
    a = Settings.load("cpu", **{"store.api_key": "s3cret", "generation.api_key": "k", "serving.api_key": "x"})
    assert "s3cret" not in str(a.public_dump()) and "k" != a.public_dump()["generation"].get("api_key")
    assert a.config_hash() == Settings.load("cpu").config_hash()


def test_model_ids_do_not_change_when_the_model_loads(tmp_path):
    """Eval resume matches records by model id: it must be the same before and after loading (local paths too)."""
    app = rag.load("gpu", data_dir=tmp_path, **{"generation.model": str(tmp_path / "my-model.gguf")})
    before = app.generator_id()
    assert before == f"{tmp_path / 'my-model.gguf'} [4bit]"
    assert rag.load("gpu", data_dir=tmp_path, **{"generation.model": str(tmp_path / "my-model.gguf")}).generator_id() == before
