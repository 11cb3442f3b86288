"""Chunking: deterministic ids, title in embedded text and payload, size and overlap."""

from __future__ import annotations

import pytest

from rag.ingest.chunking import chunk_paper, chunk_papers, paper_payload, split_text
from rag.config import SAMPLE_CORPUS, ChunkSettings
from rag.ingest.corpus import Paper, load_papers


@pytest.fixture(scope="module")
def sample():
    return load_papers([SAMPLE_CORPUS])


@pytest.fixture(scope="module")
def sample_chunks(sample):
    return chunk_papers(sample, ChunkSettings())


@pytest.fixture(scope="module")
def longest(sample):
    return max(sample, key=lambda p: len(p.abstract))


@pytest.fixture(scope="module")
def tokenizer():
    from llama_index.core.utils import get_tokenizer

    return get_tokenizer()


def test_ids_deterministic_across_calls(sample):
    s = ChunkSettings()
    a = [c.point_id for c in chunk_papers(sample[:40], s)]
    b = [c.point_id for c in chunk_papers([Paper(p.title, p.abstract, list(p.pages)) for p in sample[:40]], s)]
    assert a == b
    assert len(set(a)) == len(a)


def test_ids_do_not_depend_on_pages_but_on_content():
    s = ChunkSettings()
    a = chunk_paper(Paper("T", "One. Two.", ["p1 (Mar 1)"]), s)[0]
    b = chunk_paper(Paper("T", "One. Two.", ["p2 (Mar 2)"]), s)[0]
    c = chunk_paper(Paper("T", "One. Three.", ["p1 (Mar 1)"]), s)[0]
    assert a.point_id == b.point_id
    assert a.point_id != c.point_id


def test_ids_unique_over_sample(sample_chunks):
    ids = [c.point_id for c in sample_chunks]
    assert len(ids) == len(set(ids)) == 651


def test_title_in_embed_text_and_payload(longest):
    s = ChunkSettings(chunk_size=64, chunk_overlap=8)
    chunks = chunk_paper(longest, s)
    assert len(chunks) > 3
    for i, c in enumerate(chunks):
        assert c.embed_text == f"{longest.title}\n{c.text}"
        assert (c.index, c.count) == (i, len(chunks))
        pl = c.payload()
        assert pl["title"] == longest.title
        assert pl["text"] == c.text
        assert pl["paper_id"] == longest.paper_id
        assert pl["chunk"] == i and pl["chunks"] == len(chunks)
        assert pl["pages"] == longest.pages
        assert pl["payload_hash"] == paper_payload(longest)["payload_hash"]


def test_payload_dates_from_pages():
    p = Paper("T", "x", ["000.txt (Mar 13)", "001.txt (Mar 14)", "002.txt (Mar 13)", "a.jsonl:3"])
    assert chunk_paper(p, ChunkSettings())[0].payload()["dates"] == ["Mar 13", "Mar 14"]


def test_payload_metadata_cannot_clobber_title_or_text():
    p = Paper("Real", "Body.", metadata={"title": "Fake", "text": "Fake", "id": "1"})
    pl = chunk_paper(p, ChunkSettings())[0].payload()
    assert (pl["title"], pl["text"], pl["id"]) == ("Real", "Body.", "1")


@pytest.mark.parametrize("size, overlap", [(32, 0), (64, 16), (128, 32), (256, 32)])
def test_chunk_size_respected(longest, tokenizer, size, overlap):
    parts = split_text(longest.abstract, ChunkSettings(chunk_size=size, chunk_overlap=overlap))
    assert len(parts) >= 2
    assert all(len(tokenizer(t)) <= size for t in parts), [len(tokenizer(t)) for t in parts]


def test_default_settings_chunk_counts(sample_chunks):
    assert len(sample_chunks) == 651
    assert max(c.count for c in sample_chunks) == 2
    assert len({c.paper.paper_id for c in sample_chunks}) == 342


def test_no_overlap_chunks_partition_the_abstract(longest):
    parts = split_text(longest.abstract, ChunkSettings(chunk_size=64, chunk_overlap=0))
    assert len(parts) > 3
    assert " ".join(parts) == longest.abstract


def test_overlap_repeats_text_between_consecutive_chunks(longest):
    no = split_text(longest.abstract, ChunkSettings(chunk_size=64, chunk_overlap=0))
    ov = split_text(longest.abstract, ChunkSettings(chunk_size=64, chunk_overlap=16))
    assert sum(map(len, ov)) > sum(map(len, no))
    overlapping = [(a, b) for a, b in zip(ov, ov[1:]) if " ".join(b.split()[:3]) in a]
    assert overlapping, "no chunk starts with text from the end of the previous one"
    # every chunk is taken from the abstract, in order
    starts = [longest.abstract.find(part[:40]) for part in ov]
    assert all(i >= 0 for i in starts) and starts == sorted(starts)


def test_short_abstract_is_one_chunk():
    (c,) = chunk_paper(Paper("Tiny", "One sentence. Two sentences."), ChunkSettings())
    assert c.text == "One sentence. Two sentences."
    assert c.embed_text == "Tiny\nOne sentence. Two sentences."


def test_content_hash_covers_title_and_abstract_only():
    from rag.ingest.corpus import content_hash

    assert content_hash("T", "Body.") == content_hash("T", "Body.")
    assert content_hash("T", "Body.") != content_hash("T", "Body!")
    assert content_hash("T", "Body.") != content_hash("T2", "Body.")


def test_payload_hash_tracks_pages_dates_and_metadata_not_chunking():
    p = Paper("T", "Body.", ["a (Mar 1)"], {"id": "2401.00001"})
    h = paper_payload(p)["payload_hash"]
    assert h == paper_payload(Paper("T", "Body.", ["a (Mar 1)"], {"id": "2401.00001"}))["payload_hash"]
    assert h != paper_payload(Paper("T", "Body.", ["a (Mar 1)", "b (Mar 2)"], {"id": "2401.00001"}))["payload_hash"]
    assert h != paper_payload(Paper("T", "Body.", ["a (Mar 2)"], {"id": "2401.00001"}))["payload_hash"]
    assert h != paper_payload(Paper("T", "Body.", ["a (Mar 1)"], {"id": "2401.00001", "authors": "X"}))["payload_hash"]
    # every chunk of a paper carries the same paper-level fields
    long = Paper("T", "One sentence here. " * 200, ["a (Mar 1)"])
    chunks = chunk_paper(long, ChunkSettings(chunk_size=64))
    assert len(chunks) > 2 and len({c.payload()["payload_hash"] for c in chunks}) == 1


def test_tokenizer_that_cannot_load_offline_says_what_to_do(monkeypatch, tmp_path):
    # seen on a GPU machine whose image set TIKTOKEN_CACHE_DIR: llama-index then skips its bundled copy
    # of cl100k_base and tiktoken tries to download it
    import llama_index.core
    import tiktoken

    from rag.ingest.chunking import _splitter
    from rag.errors import ModelNotFoundError

    def offline(*a, **k):
        raise ConnectionError("Failed to resolve 'openaipublic.blob.core.windows.net'")

    monkeypatch.setattr(llama_index.core, "global_tokenizer", None)
    monkeypatch.setattr(tiktoken, "encoding_for_model", offline)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="unset TIKTOKEN_CACHE_DIR"):
        _splitter.__wrapped__(256, 32)
