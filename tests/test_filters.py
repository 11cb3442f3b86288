"""Metadata filters (issue 23): arXiv records' authors, categories and years in the payload, one filter language
for the Python API, the CLI and /v1/search, both backends alike, and the filters a question states itself."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import httpx
import pytest

import rag
from rag.answer.constraints import find, scope
from rag.config import ServingSettings, StoreSettings
from rag.errors import InputError
from rag.ingest.metadata import author_keys, first_year, record_metadata
from rag.search.filters import conditions, describe, merge, parse_expression
from rag.search.store import open_store
from rag.testing import FakeEmbedder, FakeGenerator, free_port
from serving import server as srv
from serving.cli import main

pytestmark = [
    pytest.mark.filterwarnings("ignore:Local mode:UserWarning"),
    pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning"),
]


def _record(i: int, yymm: str, title: str, abstract: str, authors: str, cats: str, **over) -> dict:
    ident = f"{yymm}.{90000 + i:05d}"
    year, month = 2000 + int(yymm[:2]), int(yymm[2:])
    return {"id": ident, "submitter": authors.split(",")[0], "authors": authors, "title": title, "comments": None,
            "journal-ref": None, "doi": f"10.9999/synthetic.{i}" if i % 2 else None, "categories": cats, "license": None,
            "abstract": abstract, "versions": [{"version": "v1", "created": f"Mon, 1 {date(year, month, 1):%b} {year} 10:00:00 GMT"}],
            "update_date": f"{year}-{month:02d}-02", **over}


# A synthetic arXiv-shaped corpus: one topic across years, categories and authors, so that filters decide.
RECORDS = [
    _record(1, "2103", "DraftNet: Speculative Decoding with Tiny Drafts",
            "We propose DraftNet, a speculative decoding method that uses a tiny draft model to speed up language model inference by 1.8x.",
            "Jane Doe, Bo Li", "cs.CL cs.LG"),
    _record(2, "2302", "TreeDraft: Tree-Structured Speculative Decoding",
            "We propose TreeDraft, which verifies a tree of drafted tokens in one pass and speeds up decoding by 2.4x.",
            "Karim Haddad and Bo Li", "cs.LG"),
    _record(3, "2405", "MedusaLite: Speculative Decoding Heads for Small Servers",
            "We propose MedusaLite, decoding heads that speed up speculative decoding on a single GPU by 2.9x.",
            "Jane Doe, Tom\\'as Rivera", "cs.CL"),
    _record(4, "2201", "GraspFlow: Learning to Grasp from Flow",
            "We propose GraspFlow, a robot grasping policy trained on 10,000 simulated scenes that reaches 91% success.",
            "Ingrid Holm", "cs.RO cs.CV"),
    _record(5, "1911", "Conformal Sets for Deep Classifiers",
            "We propose CSet, a conformal prediction method for deep classifiers with 90% coverage on ImageNet.",
            "Wei Zhang", "stat.ML cs.LG"),
]


@pytest.fixture(scope="module")
def arxiv_file(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("arxiv") / "arxiv-metadata-oai-snapshot.json"
    f.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return f


@pytest.fixture(scope="module")
def app(arxiv_file, tmp_path_factory):
    a = rag.load(None, data_dir=tmp_path_factory.mktemp("idx"), embedder=FakeEmbedder(), generator=FakeGenerator())
    a.ingest([arxiv_file], progress=False)
    yield a
    a.close()


def _titles(hits) -> set[str]:
    return {h.title.split(":")[0] for h in hits}


# -- the metadata -------------------------------------------------------------------------------------------

def test_metadata_from_an_arxiv_record():
    m = record_metadata({**RECORDS[2], "authors_parsed": [["Doe", "Jane", ""], ["Rivera", "Tomás", ""]]})
    assert m["author_names"] == ["Jane Doe", "Tomás Rivera"] and "rivera" in m["author_keys"] and "t rivera" in m["author_keys"]
    assert m["category_list"] == ["cs.CL"] and m["primary_category"] == "cs.CL" and m["year"] == 2024 and m["versions"] == 1
    tex = record_metadata(RECORDS[2])  # no authors_parsed: the string, TeX accent removed
    assert tex["author_names"] == ["Jane Doe", "Tomas Rivera"] and "tomas rivera" in tex["author_keys"]


@pytest.mark.parametrize("record, year", [
    ({"id": "hep-th/9901001"}, 1999), ({"id": "0704.0001"}, 2007), ({"id": "2401.00001v3"}, 2024),
    ({"versions": [{"created": "Tue, 3 Mar 2015 10:00:00 GMT"}]}, 2015), ({"update_date": "2021-06-01"}, 2021), ({}, None),
])
def test_the_year_is_the_first_versions(record, year):
    assert first_year(record) == year


def test_author_forms():
    assert author_keys("J.-P. M\\\"uller") == {"j p muller", "muller", "j muller"}


# -- the filter language ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, gte, lte", [
    (">=2024", 2024, None), (">2022", 2023, None), ("<2020", None, 2019), ("<=2021", None, 2021), ("2021..2023", 2021, 2023),
    (2022, 2022, 2022), ({"gte": 2020, "lt": 2023}, 2020, 2022), ([">=2020", "<=2023"], 2020, 2023),
])
def test_year_values(value, gte, lte):
    (c,) = conditions({"year": value})
    assert (c.key, c.gte, c.lte, c.any) == ("year", gte, lte, ())


@pytest.mark.parametrize("filters, message", [
    ({"venue": "NeurIPS"}, "unknown filter 'venue'"), ({"year": "recent"}, "needs a number"),
    ({"year": [">=2024", "<2020"]}, "is empty"), ({"year": ["2019", ">=2024"]}, "no value satisfies"),
    ({"author": ""}, "needs text"), ({"category": []}, "has no value"),
])
def test_bad_filters_say_what_to_write(filters, message):
    with pytest.raises(InputError, match=message):
        conditions(filters)


def test_expressions_and_descriptions():
    assert parse_expression("year >= 2024") == ("year", ">=2024")
    with pytest.raises(InputError, match="only year takes"):
        parse_expression("author>=Doe")
    with pytest.raises(InputError, match="FIELD=VALUE"):
        parse_expression("category")
    assert describe(merge({"year": ">=2021"}, {"year": ["<=2023"], "author": "Jane Doe"})) == "year ≥ 2021 and ≤ 2023, author Jane Doe"


@pytest.mark.parametrize("backend", ["edge", "server"])
def test_both_backends_filter_alike(backend, arxiv_file, tmp_path):
    from rag.ingest import ingest_papers
    from rag.ingest.corpus import load_papers

    settings = rag.Settings.load(None, data_dir=str(tmp_path), **{"store.backend": backend, "store.url": ":memory:"})
    store = open_store(StoreSettings(backend=backend, url=":memory:" if backend == "server" else None), tmp_path, "c", FakeEmbedder.dim)
    try:
        ingest_papers(load_papers([arxiv_file]), settings, FakeEmbedder(), store, progress=False)
        got = {}
        for name, flt in {"2023+": {"year": ">=2023"}, "cs.LG": {"category": "cs.LG"}, "primary cs.LG": {"primary_category": "cs.LG"},
                          "li": {"author": "li"}, "doe 2024": {"author": "J. Doe", "year": 2024}, "none": {"author": "nobody"}}.items():
            got[name] = sorted(p["title"].split(":")[0] for _, p in store.scroll(flt, ["title"]))
        assert got == {"2023+": ["MedusaLite", "TreeDraft"], "cs.LG": ["Conformal Sets for Deep Classifiers", "DraftNet", "TreeDraft"],
                       "primary cs.LG": ["TreeDraft"], "li": ["DraftNet", "TreeDraft"], "doe 2024": ["MedusaLite"], "none": []}
        assert store.has_field("year") and store.has_field("author_keys") and not store.has_field("no_such_field")
    finally:
        store.close()


def test_an_index_from_before_the_metadata_filters_gains_their_indexes(arxiv_file, tmp_path):
    meta = tmp_path / "qdrant" / "c.json"
    store = open_store(StoreSettings(), tmp_path, "c", FakeEmbedder.dim)
    store.close()
    meta.write_text(json.dumps({"dim": FakeEmbedder.dim}))  # what an earlier version wrote: no "indexed" list
    store = open_store(StoreSettings(), tmp_path, "c", FakeEmbedder.dim)
    store.close()
    assert {"year", "author_keys", "category_list"} <= set(json.loads(meta.read_text())["indexed"])


# -- search, CLI and HTTP -----------------------------------------------------------------------------------

def test_search_api_filters(app):
    assert _titles(app.search("speculative decoding", k=5, filters={"year": "2021..2023"})) == {"DraftNet", "TreeDraft", "GraspFlow"}
    assert _titles(app.search("speculative decoding", k=5, filters={"author": "Jane Doe", "category": "cs.CL"})) == {"DraftNet", "MedusaLite"}
    hit = app.search("grasping", k=1, filters={"category": "cs.RO"})[0]
    assert hit.metadata["year"] == 2022 and hit.metadata["author_names"] == ["Ingrid Holm"]


def test_cli_search_filters(app, capsys):
    data = str(app.settings.data_dir)
    app.close()  # one open App per index: the CLI opens its own
    try:
        rag_load = rag.load
        rag.load = lambda *a, **kw: rag_load(*a, embedder=FakeEmbedder(), **kw)
        assert main(["search", "speculative decoding", "--data-dir", data, "--json", "--filter", "year>=2023",
                     "--filter", "author=bo li"]) == 0
        assert [h["title"].split(":")[0] for h in json.loads(capsys.readouterr().out)] == ["TreeDraft"]
        assert main(["search", "x", "--data-dir", data, "--filter", "year>=soon"]) == 2
        assert "needs a number" in capsys.readouterr().err
    finally:
        rag.load = rag_load


def test_http_search_filters(arxiv_file, tmp_path):
    with rag.load(None, data_dir=tmp_path, embedder=FakeEmbedder(), generator=FakeGenerator()) as a:
        a.ingest([arxiv_file], progress=False)
        settings = ServingSettings(port=free_port(), api_key="k", concurrency=1, max_waiting=1, request_timeout_s=60)
        with srv.Running(a, settings, announce=False) as running:
            auth = {"Authorization": "Bearer k"}
            r = httpx.post(f"{running.url}/v1/search", headers=auth,
                           json={"query": "speculative decoding", "k": 5, "filters": {"year": ">=2024"}})
            assert r.status_code == 200 and [h["title"].split(":")[0] for h in r.json()["data"]] == ["MedusaLite"]
            r = httpx.post(f"{running.url}/v1/search", headers=auth, json={"query": "x", "filters": {"year": "later"}})
            assert r.status_code == 400 and "needs a number" in r.json()["error"]["message"]


# -- filters the question states ----------------------------------------------------------------------------

TODAY = date(2026, 12, 6)


@pytest.mark.parametrize("question, filters, text", [
    ("Which papers since 2024 on speculative decoding are in cs.CL?", {"year": [">=2024"], "category": ["cs.CL"]},
     "Which papers on speculative decoding are?"),
    ("speculative decoding cs.lg 2023 papers", {"year": ["2023"], "category": ["cs.LG"]}, "speculative decoding papers"),
    ("What did papers between 2021 and 2023 propose for decoding?", {"year": ["2021..2023"]}, "What did papers propose for decoding?"),
    ("grasping methods before 2023", {"year": ["<2023"]}, "grasping methods"),
    ("conformal prediction in the last 3 years", {"year": [">=2024"]}, "conformal prediction"),
    ("papers by jane doe on decoding", {"author": ["jane doe"]}, "papers on decoding"),
    ("Karim Haddad's work on speculative decoding", {"author": ["Karim Haddad"]}, "work on speculative decoding"),
    ("What does the paper by Doe et al. propose?", {"author": ["Doe"]}, "What does the paper propose?"),
    ("author: Bo Li speculative decoding after 2022", {"author": ["Bo Li"], "year": [">2022"]}, "speculative decoding"),
])
def test_constraints_a_question_states(question, filters, text):
    c = find(question, today=TODAY)
    assert c.filters == filters and c.text == text


@pytest.mark.parametrize("question", [
    "How does CLIP do on COCO 2017?", "What model was trained on SemEval-2023 data?", "What does PixelWorld propose?",
    "Which papers of interest study grasping?", "papers from your collection on decoding", "Is DraftNet faster than TreeDraft?",
])
def test_no_constraint_where_none_is_stated(question):
    class Index:
        def has_field(self, name): return True
        def has_author(self, name): return False

    assert find(question, Index(), today=TODAY).filters == {}


def test_questions_are_searched_with_their_own_filters(app):
    a = app.ask("What speculative decoding method was proposed since 2024?")
    assert a.filtered == "year ≥ 2024" and a.standalone_question == "What speculative decoding method was proposed?"
    assert {h.metadata["year"] for h in a.sources} == {2024}
    a = app.ask("What has Bo Li proposed for speculative decoding?")  # a loose author: applied, since the index has him
    assert a.filtered == "author Bo Li" and _titles(a.sources) <= {"DraftNet", "TreeDraft"}
    a = app.ask("What was proposed by Google for speculative decoding?")  # not an author here: a topic word
    assert a.filtered == "" and "Google" in a.standalone_question


@pytest.mark.parametrize("question, why", [
    ("papers by Geoffrey Hinton on speculative decoding", "no indexed paper has an author named 'Geoffrey Hinton'"),
    ("What robot grasping method was proposed in cs.RO since 2023?", "no indexed paper meets all of it"),
])
def test_a_filter_that_leaves_nothing_is_refused_and_says_so(app, question, why):
    a = app.ask(question)
    assert a.refused and a.refusal_reason == "filter" and why in a.text and "Filtered:" in a.format()


def test_an_index_without_metadata_says_the_constraint_was_not_applied(tmp_path):
    pages = tmp_path / "p.jsonl"
    pages.write_text("".join(json.dumps({"title": r["title"], "abstract": r["abstract"]}) + "\n" for r in RECORDS))
    with rag.load(None, data_dir=tmp_path / "idx", embedder=FakeEmbedder(), generator=FakeGenerator()) as a:
        a.ingest([pages], progress=False)
        s = scope("Speculative decoding papers by Jane Doe since 2024?", None, a.store)
        assert s.filters is None and s.text == "Speculative decoding papers by Jane Doe since 2024?"
        assert "no year or author data" in s.note
        ans = a.ask("Which speculative decoding method was proposed since 2024?")
        assert not ans.filtered and "was not applied" in ans.format()
