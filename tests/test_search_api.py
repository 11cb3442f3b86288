"""The public search API (rag.load / App.search) and the `rag` CLI's ingest and search commands."""

from __future__ import annotations

import json
import uuid

import pytest

import rag
from rag.config import SAMPLE_CORPUS
from rag.ingest.corpus import load_papers
from rag.errors import InputError
from rag.search.retrieval import MAX_QUERY_CHARS
from rag.testing import FakeEmbedder
from serving.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:Local mode:UserWarning")

CMM = "CMM-Math: A Chinese Multimodal Math Dataset To Evaluate and Enhance the Mathematics Reasoning of Large Multimodal Models"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    a = rag.load(None, data_dir=str(tmp_path_factory.mktemp("api")), embedder=FakeEmbedder())
    report = a.ingest([SAMPLE_CORPUS], progress=False)
    assert report.points_total == 651
    yield a
    a.close()


@pytest.fixture(scope="module")
def two_chunk_paper():
    from rag.ingest.chunking import chunk_paper
    from rag.config import ChunkSettings

    return next(p for p in load_papers([SAMPLE_CORPUS]) if len(chunk_paper(p, ChunkSettings())) == 2)


def test_search_returns_hits_best_first(app):
    hits = app.search("Chinese multimodal math benchmark")
    assert len(hits) == 5
    assert hits[0].title == CMM
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    for h in hits:
        assert isinstance(h.title, str) and h.title
        assert isinstance(h.score, float)
        assert isinstance(h.text, str) and h.text
        uuid.UUID(h.paper_id)
        assert h.pages and all(isinstance(p, str) for p in h.pages)
        assert "payload_hash" not in h.metadata
        d = h.to_dict()
        assert {"title", "score", "text", "paper_id", "pages"} <= d.keys()


def test_hit_pages_and_text_match_corpus(app):
    (h,) = app.search(CMM, k=1)
    assert h.title == CMM
    assert h.pages == ["002_bf9c92c37ade58e8.txt (Mar 11)", "004_a5d100450136de41.txt (Mar 11)"]
    paper = next(p for p in load_papers([SAMPLE_CORPUS]) if p.title == CMM)
    assert h.text in paper.abstract
    assert h.paper_id == paper.paper_id
    assert h.metadata.get("dates") == ["Mar 11"]


def test_one_hit_per_paper_by_default(app, two_chunk_paper):
    hits = app.search(two_chunk_paper.title, k=10)
    assert len(hits) == 10
    assert len({h.paper_id for h in hits}) == 10
    assert hits[0].paper_id == two_chunk_paper.paper_id


def test_several_chunks_per_paper_when_asked(app, two_chunk_paper):
    hits = app.search(two_chunk_paper.title, k=10, one_per_paper=False)
    assert len(hits) == 10
    mine = [h for h in hits if h.paper_id == two_chunk_paper.paper_id]
    assert len(mine) == 2
    assert {h.chunk for h in mine} == {0, 1}


@pytest.mark.parametrize("k", [1, 3, 7, 20])
def test_k_respected(app, k):
    assert len(app.search("vision language model", k=k)) == k


@pytest.mark.parametrize("k", [-1, 1001])
def test_bad_k_raises(app, k):
    with pytest.raises(InputError, match="k must be"):
        app.search("vision", k=k)


def test_k_zero_raises(app):
    with pytest.raises(InputError, match="k must be"):
        app.search("vision", k=0)


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_modes(app, mode):
    hits = app.search("Chinese multimodal math dataset", k=10, mode=mode)
    assert len(hits) == 10
    assert CMM in [h.title for h in hits]
    if mode != "dense":  # the bag-of-words FakeEmbedder is a weak dense model
        assert hits[0].title == CMM


def test_auto_fusion_is_dense_for_a_question_that_names_nothing(app):
    auto = rag.load(None, data_dir=app.settings.data_dir, embedder=app.embedder, store=app.store,
                    **{"retrieval.fusion": "auto"})
    plain = "which dataset evaluates chinese multimodal math"  # names nothing: dense alone
    assert [h.title for h in auto.search(plain, k=5)] == [h.title for h in app.search(plain, k=5, mode="dense")]
    named = "How many samples does CMM-Math contain?"  # names CMM-Math: dense + BM25 as before
    assert [h.title for h in auto.search(named, k=5)] == [h.title for h in app.search(named, k=5)]
    assert [h.title for h in auto.search(plain, k=5)] != [h.title for h in app.search(plain, k=5)]


def test_unknown_mode_raises(app):
    with pytest.raises(InputError):
        app.search("vision", mode="bm25")


def test_filter_by_date(app):
    hits = app.search("multimodal", k=10, filters={"date": "Mar 14"})
    assert len(hits) == 10
    assert all(any(p.endswith("(Mar 14)") for p in h.pages) for h in hits)
    hits = app.search("multimodal", k=10, filters={"date": ["Mar 13", "Mar 14"]})
    assert all(any(p.endswith(("(Mar 13)", "(Mar 14)")) for p in h.pages) for h in hits)
    assert app.search("multimodal", filters={"date": "Dec 25"}) == []


def test_filter_by_title_and_paper_id(app, two_chunk_paper):
    hits = app.search("anything at all", k=5, filters={"title": CMM})
    assert [h.title for h in hits] == [CMM]
    hits = app.search("anything at all", k=5, filters={"paper_id": two_chunk_paper.paper_id}, one_per_paper=False)
    assert len(hits) == 2 and {h.paper_id for h in hits} == {two_chunk_paper.paper_id}


def test_filter_by_page(app):
    page = "001_f9c351bb7870d889.txt"
    hits = app.search("multimodal", k=10, filters={"page": page})
    assert len(hits) == 10
    assert all(any(p.startswith(page) for p in h.pages) for h in hits)


def test_unknown_filter_raises(app):
    with pytest.raises(InputError, match="unknown filter"):
        app.search("vision", filters={"venue": "NeurIPS"})


@pytest.mark.parametrize("query", ["", "   ", "\n\t  \n", "\x00\x01\x02"])
def test_empty_query_raises(app, query):
    with pytest.raises(InputError, match="empty"):
        app.search(query)


def test_huge_query_raises(app):
    with pytest.raises(InputError, match="characters"):
        app.search("word " * 4000)  # 20,000 characters
    app.search("a" * MAX_QUERY_CHARS, k=1)  # at the limit is fine


def test_non_string_query_raises(app):
    with pytest.raises(InputError):
        app.search(None)


def test_control_characters_stripped(app):
    r = app.retrieve("Chinese\x00multimodal\x1b math\x07 dataset\x7f")
    assert r.query == "Chinese multimodal  math  dataset"
    assert r.hits[0].title == CMM
    assert app.search("Chinese\x00multimodal\x1bmath")[0].title == app.search("Chinese multimodal math")[0].title


def test_retrieve_reports_best_dense_and_timings(app):
    r = app.retrieve("Chinese multimodal math dataset", k=2)
    assert 0.0 < r.best_dense <= 1.0 + 1e-6
    assert r.embed_ms >= 0 and r.search_ms >= 0
    assert len(r.hits) == 2


def test_load_with_settings_overrides(tmp_path):
    a = rag.load(None, data_dir=str(tmp_path), embedder=FakeEmbedder(), **{"retrieval.k": 3, "store.backend": "server", "store.url": ":memory:"})
    try:
        a.ingest([SAMPLE_CORPUS / "001_f9c351bb7870d889.txt"], progress=False)
        assert len(a.retrieve("multimodal").hits) == 3  # configured default k
        assert a.count() > 0
    finally:
        a.close()


# -- CLI, with the embedding model replaced by FakeEmbedder (fast) ----------------------


@pytest.fixture
def fake_model(monkeypatch):
    real = rag.load
    monkeypatch.setattr(rag, "load", lambda *a, **kw: real(*a, embedder=FakeEmbedder(), **kw))


@pytest.fixture
def small_corpus(tmp_path):
    f = tmp_path / "small.jsonl"
    papers = load_papers([SAMPLE_CORPUS / "001_f9c351bb7870d889.txt"])[:12]
    f.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract, "date": "Mar 14"}) + "\n" for p in papers))
    return f, papers


def test_cli_ingest_and_search_json(fake_model, small_corpus, tmp_path, capsys):
    corpus, papers = small_corpus
    data = str(tmp_path / "idx")
    assert main(["ingest", str(corpus), "--data-dir", data, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["papers"] == report["added"] == 12 and report["points_total"] > 0

    assert main(["search", papers[3].title, "--data-dir", data, "--json", "-k", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert isinstance(hits, list) and len(hits) == 3
    assert all(isinstance(h, dict) and isinstance(h["title"], str) and isinstance(h["score"], float) for h in hits)
    assert hits[0]["title"] == papers[3].title

    assert main(["search", "multimodal", "--data-dir", data, "--json", "--filter", "title=" + papers[0].title]) == 0
    assert [h["title"] for h in json.loads(capsys.readouterr().out)] == [papers[0].title]

    assert main(["search", papers[3].title, "--data-dir", data, "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. [") and papers[3].title in out and "\n2. [" in out

    assert main(["ingest", str(corpus), "--data-dir", data]) == 0
    assert "12 unchanged" in capsys.readouterr().out


def test_cli_search_empty_index(fake_model, tmp_path, capsys):
    assert main(["search", "anything", "--data-dir", str(tmp_path)]) == 0
    assert "no hits" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["search", "x", "--set", "retrieval.kk=1"], "retrieval.kk"),
        (["search", "x", "--set", "retrieval.k=0"], "retrieval.k"),
        (["search", "x", "--set", "nokeyvalue"], "KEY=VALUE"),
        (["ingest", "--set", "store.backend=nosuch"], "store.backend"),
        (["search", "x", "--config", "no-such-preset"], "config not found"),
        (["search", "   "], "empty"),
        (["search", "x", "--filter", "venue=NeurIPS"], "unknown filter"),
        (["search", "x", "--filter", "novalue"], "FIELD=VALUE"),
        (["ingest", "/no/such/corpus.txt"], "no such file"),
    ],
)
def test_cli_errors_exit_2_with_one_line(fake_model, tmp_path, capsys, argv, needle):
    assert main([*argv, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and needle in lines[0]


def test_cli_bad_set_key_without_model(tmp_path, capsys):
    """A bad --set key fails before any model is loaded (no FakeEmbedder needed)."""
    assert main(["search", "x", "--data-dir", str(tmp_path), "--set", "retrieval.kk=1"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: invalid setting: retrieval.kk")


# -- CLI with the real embedding model ---------------------------------------------------


@pytest.mark.slow
def test_cli_real_model_ingest_and_search(small_corpus, tmp_path, capsys):
    corpus, papers = small_corpus
    data = str(tmp_path / "idx")
    assert main(["ingest", str(corpus), "--data-dir", data, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 12
    target = papers[5]
    assert main(["search", target.title, "--data-dir", data, "--json", "-k", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and all({"title", "score"} <= h.keys() for h in hits)
    assert hits[0]["title"] == target.title
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_cli_ingest_dry_run_and_strict(tmp_path, capsys):
    bad = tmp_path / "c.jsonl"
    bad.write_text('{"title": "Good Paper", "abstract": "Fine words."}\n{broken\n')
    data = tmp_path / "idx"
    assert main(["ingest", str(bad), "--data-dir", str(data), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run, nothing embedded or written: 1 papers: 1 would be added" in out
    assert f"skipped 1 of 2 records (1 invalid_json); first:\n  {bad}:2: invalid JSON" in out
    assert not data.exists()
    assert main(["ingest", str(bad), "--data-dir", str(data), "--strict"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {bad}:2: invalid JSON") and "--strict" in line


def test_embedding_precision_that_the_device_cannot_run_is_a_one_line_error(tmp_path, capsys):
    args = ["search", "x", "--data-dir", str(tmp_path), "--set", "embedding.device=cpu"]
    assert main([*args, "--set", "embedding.precision=float16"]) == 2
    assert capsys.readouterr().err.strip() == "error: embedding.precision float16 needs a CUDA device (on CPU use float32 or int8)"


@pytest.mark.slow
def test_int8_embeddings_stay_close_to_float32():
    from rag.config import EmbeddingSettings
    from rag.search.embedding import Embedder

    texts = ["Chinese multimodal math benchmark with 28,000 samples", "A vision-language model for OCR", "Dogs bark at night"]
    f32 = Embedder(EmbeddingSettings(device="cpu")).embed_documents(texts)
    i8 = Embedder(EmbeddingSettings(device="cpu", precision="int8")).embed_documents(texts)
    cos = [sum(a * b for a, b in zip(x, y)) for x, y in zip(f32, i8)]
    assert len(i8[0]) == len(f32[0]) == 384
    assert min(cos) > 0.8, cos
