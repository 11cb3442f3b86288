"""Golden tests for the corpus readers on data/sample, plus malformed-input handling."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from rag.config import SAMPLE_CORPUS
from rag.ingest.corpus import (
    Entry,
    Paper,
    collect_papers,
    load_papers,
    normalize_text,
    read_jsonl,
    read_pages,
    read_path,
    title_key,
)
from rag.errors import CorpusError

SAMPLE_FILES = sorted(SAMPLE_CORPUS.glob("*.txt"))
INFIMM = "InfiMM-WebMath-40B: Advancing Multimodal Pre-Training for Enhanced Mathematical Reasoning"
HEADER = "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nbyAK and the research community\n\n"


@pytest.fixture(scope="module")
def papers() -> dict[str, Paper]:
    return {p.title: p for p in load_papers([SAMPLE_CORPUS])}


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# -- golden: the sample corpus ----------------------------------------------------------


def test_sample_has_five_pages_with_dates():
    assert [p.name for p in SAMPLE_FILES] == [
        "000_f8d5cab1cc16e04b.txt",
        "001_f9c351bb7870d889.txt",
        "002_bf9c92c37ade58e8.txt",
        "003_339a6e417b5b1d6c.txt",
        "004_a5d100450136de41.txt",
    ]
    dates = [next(read_pages(p)).date for p in SAMPLE_FILES]
    assert dates == ["Mar 13", "Mar 14", "Mar 11", "Mar 11", "Mar 11"]


def test_sample_entry_and_paper_counts(papers):
    entries = list(read_path(SAMPLE_CORPUS))
    assert len(entries) == 449
    assert len(papers) == 342
    assert len(collect_papers(entries)) == 342
    # every entry's paper is present, and the pages add up to the entries
    assert sum(len(p.pages) for p in papers.values()) == 449


def test_first_entry_of_first_page():
    e = next(read_pages(SAMPLE_FILES[0]))
    assert e.title == "NVLM: Open Frontier-Class Multimodal LLMs"
    assert e.source == "000_f8d5cab1cc16e04b.txt"
    assert e.date == "Mar 13"
    assert e.abstract.startswith("We introduce NVLM 1.0, a family of frontier-class multimodal large language models")


def test_paper_on_several_pages_keeps_all_pages(papers):
    p = papers["4M-21: An Any-to-Any Vision Model for Tens of Tasks and Modalities"]
    assert p.pages == [
        "000_f8d5cab1cc16e04b.txt (Mar 13)",
        "001_f9c351bb7870d889.txt (Mar 14)",
        "002_bf9c92c37ade58e8.txt (Mar 11)",
        "003_339a6e417b5b1d6c.txt (Mar 11)",
    ]
    p = papers["4M: Massively Multimodal Masked Modeling"]
    assert p.pages == [
        "000_f8d5cab1cc16e04b.txt (Mar 13)",
        "002_bf9c92c37ade58e8.txt (Mar 11)",
        "003_339a6e417b5b1d6c.txt (Mar 11)",
        "004_a5d100450136de41.txt (Mar 11)",
    ]
    # one paper is on all five pages
    assert sum(len(p.pages) == 5 for p in papers.values()) == 1


def test_page_count_distribution(papers):
    from collections import Counter

    assert Counter(len(p.pages) for p in papers.values()) == {1: 261, 2: 63, 3: 11, 4: 6, 5: 1}


def test_tex_escapes_normalised(papers):
    p = papers["Interpreting Object-level Foundation Models via Visual Precision Search"]
    assert "faithfulness gains of 23.7%, 31.6%" in p.abstract
    assert "\\%" not in p.abstract
    # no paper keeps a TeX-escaped percent or ampersand
    assert not any("\\%" in q.abstract or "\\&" in q.abstract for q in papers.values())
    assert any("model & task scal" in q.abstract for q in papers.values())
    # whitespace collapsed everywhere
    assert all(q.abstract == " ".join(q.abstract.split()) for q in papers.values())
    assert all(q.title == " ".join(q.title.split()) for q in papers.values())


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Gains of 23.7\\%  and\n 31\\%", "Gains of 23.7% and 31%"),
        ("A \\& B, x\\_y, \\#1, \\$5", "A & B, x_y, #1, $5"),
        ("``quoted''", '"quoted"'),
        ("  lots\t of \n space ", "lots of space"),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_title_key_casefolds_and_normalises():
    assert title_key("  Attention IS all\n you   Need ") == title_key("attention is all you need")


def test_paper_id_deterministic_and_case_insensitive():
    a = Paper("Attention Is All You Need", "x")
    b = Paper("attention  is all you NEED", "y")
    assert a.paper_id == b.paper_id
    assert a.paper_id != Paper("Attention Is Not All You Need", "x").paper_id


def test_infimm_conflict_resolved_regardless_of_file_order(caplog):
    first, last = SAMPLE_FILES[0], SAMPLE_FILES[4]
    with caplog.at_level(logging.WARNING, logger="rag.ingest.corpus"):
        fwd = {p.title: p for p in load_papers([first, last])}[INFIMM]
    assert any("two abstracts" in r.getMessage() and INFIMM in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag.ingest.corpus"):
        rev = {p.title: p for p in load_papers([last, first])}[INFIMM]
    assert any("two abstracts" in r.getMessage() and INFIMM in r.getMessage() for r in caplog.records)
    assert fwd.abstract == rev.abstract
    # the longer abstract (page 000, with the hf-proxy link) wins
    a000 = next(e for e in read_pages(first) if e.title == INFIMM).abstract
    a004 = next(e for e in read_pages(last) if e.title == INFIMM).abstract
    assert a000 != a004 and len(a000) > len(a004)
    assert fwd.abstract == a000
    assert sorted(fwd.pages) == sorted(rev.pages) == ["000_f8d5cab1cc16e04b.txt (Mar 13)", "004_a5d100450136de41.txt (Mar 11)"]


def test_conflict_tie_is_order_independent():
    """Equal lengths: the entry with the smaller content hash wins, whichever file came first."""
    from rag.ingest.corpus import content_hash

    e1 = Entry("T", "bbb", "p1", "Mar 1")
    e2 = Entry("t", "aaa", "p2", "Mar 2")
    winner = min((e1, e2), key=lambda e: content_hash(e.title, e.abstract))
    for order in ([e1, e2], [e2, e1]):
        (p,) = collect_papers(order)
        assert (p.title, p.abstract) == (winner.title, winner.abstract)
        assert p.pages == ["p1 (Mar 1)", "p2 (Mar 2)"]


def test_whole_sample_order_independent(tmp_path):
    """Abstracts and page sets do not depend on the order the files are read in."""
    fwd = {p.paper_id: p for p in load_papers(SAMPLE_FILES)}
    rev = {p.paper_id: p for p in load_papers(list(reversed(SAMPLE_FILES)))}
    assert fwd.keys() == rev.keys()
    for pid, p in fwd.items():
        assert p.abstract == rev[pid].abstract
        assert sorted(p.pages) == sorted(rev[pid].pages)


def test_same_page_twice_does_not_duplicate_pages():
    e = Entry("T", "a", "p1", "Mar 1")
    assert collect_papers([e, e])[0].pages == ["p1 (Mar 1)"]


# -- JSONL and the arXiv snapshot shape -------------------------------------------------


def test_jsonl_reader(tmp_path):
    f = write(tmp_path / "papers.jsonl", "\n".join([
        json.dumps({"title": "Paper One", "abstract": "First abstract with 5\\% gain."}),
        "",
        json.dumps({"title": "Paper Two", "abstract": "Second.", "date": "Mar 2"}),
    ]) + "\n")
    entries = list(read_jsonl(f))
    assert [(e.title, e.abstract, e.source, e.line, e.date) for e in entries] == [
        ("Paper One", "First abstract with 5% gain.", "papers.jsonl", 1, ""),
        ("Paper Two", "Second.", "papers.jsonl", 3, "Mar 2"),
    ]


def test_arxiv_snapshot_lines_to_metadata(tmp_path):
    rows = [
        {"id": "1706.03762", "submitter": "Ashish Vaswani", "authors": "Ashish Vaswani, Noam Shazeer, Niki Parmar",
         "title": "Attention Is All\n  You Need", "comments": "15 pages", "journal-ref": None, "doi": None,
         "categories": "cs.CL cs.LG", "license": "http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
         "abstract": "  The dominant sequence transduction models are based on complex recurrent\nor convolutional neural networks.\n",
         "versions": [{"version": "v1", "created": "Mon, 12 Jun 2017 17:57:34 GMT"}],
         "update_date": "2023-08-02", "authors_parsed": [["Vaswani", "Ashish", ""]]},
        {"id": "1810.04805", "authors": "Jacob Devlin, Ming-Wei Chang", "title": "BERT: Pre-training of Deep\n  Bidirectional Transformers",
         "categories": "cs.CL", "abstract": "We introduce a new language representation model called BERT.",
         "update_date": "2019-05-24"},
    ]
    f = write(tmp_path / "arxiv-metadata-oai-snapshot.json", "".join(json.dumps(r) + "\n" for r in rows))
    ps = load_papers([f])
    assert [p.title for p in ps] == ["Attention Is All You Need", "BERT: Pre-training of Deep Bidirectional Transformers"]
    p = ps[0]
    assert p.abstract == "The dominant sequence transduction models are based on complex recurrent or convolutional neural networks."
    assert p.metadata == {"id": "1706.03762", "authors": "Ashish Vaswani, Noam Shazeer, Niki Parmar", "categories": "cs.CL cs.LG",
                          "author_names": ["Ashish Vaswani", "Noam Shazeer", "Niki Parmar"],
                          "author_keys": ["a vaswani", "ashish vaswani", "n parmar", "n shazeer", "niki parmar", "noam shazeer",
                                          "parmar", "shazeer", "vaswani"],
                          "category_list": ["cs.CL", "cs.LG"], "primary_category": "cs.CL", "year": 2017, "versions": 1}
    # no line number in pages: a new snapshot with shifted lines changes nothing stored
    assert p.pages == ["arxiv-metadata-oai-snapshot.json (2023-08-02)"]
    assert ps[1].metadata["id"] == "1810.04805"
    assert ps[1].pages == ["arxiv-metadata-oai-snapshot.json (2019-05-24)"]
    # identity is the arXiv id
    assert p.key == "arxiv:1706.03762" and p.paper_id != Paper(p.title, p.abstract).paper_id


def test_metadata_reaches_chunk_payload(tmp_path):
    from rag.ingest.chunking import chunk_paper
    from rag.config import ChunkSettings

    f = write(tmp_path / "a.jsonl", json.dumps({"id": "2401.00001", "title": "T", "abstract": "A b c.", "categories": "cs.CV",
                                                "update_date": "2024-01-01"}) + "\n")
    (p,) = load_papers([f])
    payload = chunk_paper(p, ChunkSettings())[0].payload()
    assert payload["id"] == "2401.00001" and payload["categories"] == "cs.CV"
    assert payload["dates"] == ["2024-01-01"]


def test_folder_mixes_pages_and_jsonl(tmp_path):
    shutil.copy(SAMPLE_FILES[1], tmp_path / SAMPLE_FILES[1].name)
    write(tmp_path / "extra.jsonl", json.dumps({"title": "Extra Paper", "abstract": "Extra."}) + "\n")
    write(tmp_path / "notes.md", "ignored: not a corpus suffix")
    titles = [p.title for p in load_papers([tmp_path])]
    assert "Extra Paper" in titles
    assert len(titles) == len({e.title for e in read_pages(SAMPLE_FILES[1])}) + 1


# -- malformed inputs: CorpusError naming file and line ---------------------------------


def _page(body: str) -> str:
    return HEADER + body


@pytest.mark.parametrize(
    "name, content, where",
    [
        ("bad_header.txt", "old\n\nGet trending papers in your email inbox!\nSubscribe\nbyAK and the research community\nMar 13\nT\nA\n", ":1:"),
        ("no_date.txt", _page("A Title\n\nAn abstract.\n"), ":9:"),
        ("odd.txt", _page("Mar 13\n\nT1\n\nA1\n\nT2\n"), ":15:"),
        ("bad.jsonl", '{"title": "A", "abstract": "x"}\n{"title": "B", "abstract": \n', ":2:"),
        ("not_object.jsonl", '{"title": "A", "abstract": "x"}\n["a list"]\n', ":2:"),
        ("no_abstract.jsonl", '{"title": "A", "abstract": "x"}\n\n{"title": "B"}\n', ":3:"),
        ("empty_abstract.jsonl", '{"title": "A", "abstract": "   "}\n', ":1:"),
        ("title_too_long.jsonl", json.dumps({"title": "x" * 1001, "abstract": "y"}) + "\n", ":1:"),
    ],
)
def test_malformed_file_names_file_and_line(tmp_path, name, content, where):
    f = write(tmp_path / name, content)
    with pytest.raises(CorpusError) as ei:
        load_papers([f])
    msg = str(ei.value)
    assert f"{f}{where}" in msg, msg


def test_non_utf8_page_names_file(tmp_path):
    f = write(tmp_path / "latin1.txt", _page("Mar 13\n\nCaf\xe9 title\n\nAbstract.\n").encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8") as ei:
        load_papers([f])
    assert str(f) in str(ei.value)


def test_non_utf8_page_names_line(tmp_path):
    f = write(tmp_path / "latin1.txt", _page("Mar 13\n\nCaf\xe9 title\n\nAbstract.\n").encode("latin-1"))
    with pytest.raises(CorpusError) as ei:
        load_papers([f])
    assert f"{f}:11" in str(ei.value)


def test_non_utf8_jsonl_gives_corpus_error(tmp_path):
    f = write(tmp_path / "bad.jsonl", b'{"title": "A", "abstract": "x"}\n{"title": "B\xff", "abstract": "y"}\n')
    with pytest.raises(CorpusError) as ei:
        load_papers([f])
    assert f"{f}:2" in str(ei.value)


def test_header_only_page_names_real_line(tmp_path):
    f = write(tmp_path / "header_only.txt", HEADER)  # header on lines 1, 3, 5, 7
    with pytest.raises(CorpusError) as ei:
        load_papers([f])
    msg = str(ei.value)
    line = int(msg.split(f"{f}:", 1)[1].split(":", 1)[0])
    assert line >= 7, msg


def test_unknown_suffix(tmp_path):
    f = write(tmp_path / "papers.csv", "title,abstract\n")
    with pytest.raises(CorpusError, match="unknown format") as ei:
        load_papers([f])
    assert str(f) in str(ei.value)


def test_missing_path(tmp_path):
    with pytest.raises(CorpusError, match="no such file") as ei:
        load_papers([tmp_path / "nope.txt"])
    assert str(tmp_path / "nope.txt") in str(ei.value)


def test_empty_folder(tmp_path):
    (tmp_path / "readme.md").write_text("no corpus here")
    with pytest.raises(CorpusError, match="no .txt") as ei:
        load_papers([tmp_path])
    assert str(tmp_path) in str(ei.value)


def test_malformed_file_in_folder_names_that_file(tmp_path):
    for p in SAMPLE_FILES:
        shutil.copy(p, tmp_path / p.name)
    bad = write(tmp_path / "999_bad.txt", _page("Mar 13\n\nT1\n\nA1\n\nT2\n"))
    with pytest.raises(CorpusError) as ei:
        load_papers([tmp_path])
    assert f"{bad}:15:" in str(ei.value)


# -- skip and report; --strict --------------------------------------------------------------


def _app(tmp_path):
    import rag
    from rag.testing import FakeEmbedder

    return rag.load(None, data_dir=str(tmp_path / "idx"), embedder=FakeEmbedder(),
                    **{"store.backend": "server", "store.url": ":memory:"})


def _page_and_bad_jsonl(tmp_path, jsonl: str) -> Path:
    """A corpus folder: the first sample page and zz_bad.jsonl holding ``jsonl``."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE_FILES[0], corpus / SAMPLE_FILES[0].name)
    write(corpus / "zz_bad.jsonl", jsonl)
    return corpus


def test_ingest_skips_bad_records_and_reports_them(tmp_path):
    corpus = _page_and_bad_jsonl(tmp_path, '{"title": "A", "abstract": "x"}\n{not json}\n{"title": "B", "abstract": ""}\n')
    with _app(tmp_path) as app:
        report = app.ingest([corpus], progress=False)
        n_page = len({e.key for e in read_pages(SAMPLE_FILES[0])})
        assert report.added == report.papers == n_page + 1
        assert report.skipped == {"invalid_json": 1, "empty_abstract": 1}
        assert report.skipped_examples[0].startswith(f"{corpus / 'zz_bad.jsonl'}:2: invalid JSON")
        assert f"{corpus / 'zz_bad.jsonl'}:3: empty abstract" in report.skipped_examples[1]
        assert "skipped 2 of" in report.summary() and "1 invalid_json" in report.summary()


def test_strict_ingest_with_malformed_file_writes_nothing(tmp_path):
    corpus = _page_and_bad_jsonl(tmp_path, '{"title": "A", "abstract": "x"}\n{not json}\n')
    with _app(tmp_path) as app:
        with pytest.raises(CorpusError, match="zz_bad.jsonl:2"):
            app.ingest([corpus], progress=False, strict=True)
        assert app.count() == 0


def test_strict_ingest_with_malformed_file_leaves_index_unchanged(tmp_path):
    good = write(tmp_path / "good.jsonl", "".join(
        json.dumps({"title": f"Paper {i}", "abstract": f"Abstract number {i}."}) + "\n" for i in range(5)))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write(corpus / "a.jsonl", json.dumps({"title": "New Paper", "abstract": "New."}) + "\n")
    write(corpus / "b.txt", _page("Mar 13\n\nT1\n\nA1\n\nT2\n"))
    with _app(tmp_path) as app:
        assert app.ingest([good], progress=False).added == 5
        before = app.count()
        with pytest.raises(CorpusError, match="b.txt:15"):
            app.ingest([corpus], progress=False, strict=True)
        assert app.count() == before == 5
        # without --strict the good records go in and the bad one is reported
        report = app.ingest([corpus], progress=False)
        assert (report.added, report.skipped) == (2, {"title_without_abstract": 1})
        assert app.count() == 7


def test_bom_is_accepted(tmp_path):
    j = write(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + json.dumps({"title": "T", "abstract": "A."}).encode() + b"\n")
    pg = write(tmp_path / "bom.txt", b"\xef\xbb\xbf" + _page("Mar 13\n\nT1\n\nA1\n").encode())
    assert [(p.title, p.abstract) for p in load_papers([j])] == [("T", "A.")]
    assert [(p.title, p.abstract, p.pages) for p in load_papers([pg])] == [("T1", "A1", ["bom.txt (Mar 13)"])]


@pytest.mark.parametrize("line, reason", [
    ('{"title": "A", "abstract": "x"', "invalid_json"),
    ('["x"]', "not_object"),
    ('{"title": "A"}', "missing_fields"),
    ('{"title": " ", "abstract": "x"}', "empty_title"),
    ('{"title": "A", "abstract": "  "}', "empty_abstract"),
    (json.dumps({"title": "x" * 1001, "abstract": "y"}), "title_too_long"),
    (json.dumps({"title": "A", "abstract": "y" * 100_001}), "abstract_too_long"),
])
def test_each_bad_record_kind_is_skipped_with_its_reason(tmp_path, line, reason):
    f = write(tmp_path / "x.jsonl", '{"title": "Good", "abstract": "Fine."}\n' + line + "\n")
    recs = list(read_jsonl(f))
    assert isinstance(recs[0], Entry)
    assert (recs[1].reason, recs[1].line, recs[1].path) == (reason, 2, str(f))


def test_arxiv_versions_update_one_paper_newest_wins(tmp_path):
    rows = [{"id": "2401.00001v1", "title": "Old Title", "abstract": "A longer first version abstract.", "update_date": "2024-01-02"},
            {"id": "2401.00001v2", "title": "New Title", "abstract": "Short v2.", "update_date": "2024-03-05"},
            {"id": "2401.00002", "title": "New Title", "abstract": "Another paper, same title.", "update_date": "2024-01-01"}]
    f = write(tmp_path / "a.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ps = load_papers([f])
    assert [(p.key, p.title, p.abstract) for p in ps] == [
        ("arxiv:2401.00001", "New Title", "Short v2."),  # the newest version, though shorter
        ("arxiv:2401.00002", "New Title", "Another paper, same title."),  # same title, distinct arXiv id
    ]
    rev = write(tmp_path / "b.jsonl", "".join(json.dumps(r) + "\n" for r in reversed(rows)))
    assert [(p.key, p.abstract) for p in load_papers([rev])] == [
        ("arxiv:2401.00002", "Another paper, same title."), ("arxiv:2401.00001", "Short v2.")]
