"""Both Qdrant backends behind one interface: CRUD, filters, congruence, persistence, locking."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.ingest.chunking import chunk_paper, paper_payload
from rag.config import REPO_ROOT, SAMPLE_CORPUS, ChunkSettings, Settings, StoreSettings
from rag.ingest.corpus import Paper, load_papers
from rag.errors import InputError, StoreError
from rag.ingest import ingest_papers
from rag.search.store import PointData, QuerySpec, open_store, sparse_doc, sparse_query
from rag.testing import FakeEmbedder

pytestmark = [
    pytest.mark.filterwarnings("ignore:Local mode:UserWarning"),
    pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning"),
]

BACKENDS = ["edge", "server"]
EMB = FakeEmbedder()
DIM = FakeEmbedder.dim

PAPERS = [
    Paper("Cats and Their Purring", "Cats purr when content. Purring frequencies are low.", ["000.txt (Mar 13)"]),
    Paper("Dogs Bark Loudly", "Dogs bark at strangers. Barking is a warning signal.", ["001.txt (Mar 14)", "002.txt (Mar 11)"]),
    Paper("Quantum Chromodynamics on a Lattice", "We simulate gluons on a lattice with many GPUs.", ["002.txt (Mar 11)"]),
    Paper("Birds Sing at Dawn", "Birds sing at dawn to claim territory.", ["003.txt (Mar 11)", "000.txt (Mar 13)"]),
]


def _open(backend: str, path: Path, collection: str = "t", dim: int = DIM):
    return open_store(StoreSettings(backend=backend, url=":memory:" if backend == "server" else None), path, collection, dim)


def _points(papers: list[Paper], settings: ChunkSettings | None = None) -> list[PointData]:
    s = settings or ChunkSettings(chunk_size=32, chunk_overlap=0)
    out = []
    for p in papers:
        fields = paper_payload(p)
        for c in chunk_paper(p, s):
            out.append(PointData(c.point_id, EMB.embed_query(c.embed_text), sparse_doc(c.embed_text), c.payload(fields)))
    return out


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    st = _open(request.param, tmp_path)
    yield st
    st.close()


@pytest.fixture
def filled(store):
    pts = _points(PAPERS)
    store.upsert(pts)
    store.flush()
    return store, pts


def _q(text: str, mode: str = "hybrid", **kw) -> QuerySpec:
    return QuerySpec(dense=EMB.embed_query(text), sparse=sparse_query(text), mode=mode, exact=True, **kw)


# -- basic operations -------------------------------------------------------------------


def test_empty_store(store):
    assert store.count() == 0
    assert store.payloads(["00000000-0000-0000-0000-000000000001"], ["title"]) == {}
    assert store.query(_q("anything")) == []


def test_upsert_count_payloads(filled):
    store, pts = filled
    assert store.count() == len(pts)
    for p in PAPERS:
        assert store.count(p.paper_id) == sum(pt.payload["paper_id"] == p.paper_id for pt in pts)
    got = store.payloads([pt.id for pt in pts], ["title", "payload_hash"])
    assert set(got) == {pt.id for pt in pts}
    for pt in pts:
        assert got[pt.id] == {"title": pt.payload["title"], "payload_hash": pt.payload["payload_hash"]}


def test_upsert_same_ids_is_idempotent(filled):
    store, pts = filled
    store.upsert(pts)
    assert store.count() == len(pts)


def test_upsert_replaces_payload(filled):
    store, pts = filled
    changed = PointData(pts[0].id, pts[0].dense, pts[0].sparse, {**pts[0].payload, "payload_hash": "new"})
    store.upsert([changed])
    assert store.count() == len(pts)
    assert store.payloads([pts[0].id], ["payload_hash"])[pts[0].id] == {"payload_hash": "new"}


def test_delete_paper(filled):
    store, pts = filled
    cats, dogs = PAPERS[0], PAPERS[1]
    n_cats = store.count(cats.paper_id)
    assert n_cats >= 1
    store.delete_paper(cats.paper_id)
    assert store.count(cats.paper_id) == 0
    assert store.count() == len(pts) - n_cats
    assert store.count(dogs.paper_id) > 0
    assert all(h.payload["paper_id"] != cats.paper_id for h in store.query(_q("cats purr", limit=50)))
    store.delete_paper(cats.paper_id)  # deleting again is a no-op
    assert store.count() == len(pts) - n_cats


def test_query_modes_rank_relevant_first(filled):
    store, _ = filled
    for mode in ("dense", "sparse", "hybrid"):
        hits = store.query(_q("why do dogs bark", mode=mode, limit=3))
        assert hits[0].payload["title"] == "Dogs Bark Loudly", mode
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert len(hits) <= 3


def test_query_returns_full_payload(filled):
    store, pts = filled
    (hit,) = store.query(_q("gluons lattice", limit=1))
    expected = next(pt.payload for pt in pts if pt.id == hit.id)
    assert hit.payload == expected


# -- filters ----------------------------------------------------------------------------


def _titles(hits):
    return {h.payload["title"] for h in hits}


def test_filter_title(filled):
    store, _ = filled
    hits = store.query(_q("dogs bark", limit=20, filters={"title": "Birds Sing at Dawn"}))
    assert hits and _titles(hits) == {"Birds Sing at Dawn"}
    hits = store.query(_q("dogs bark", limit=20, filters={"title": ["Birds Sing at Dawn", "Cats and Their Purring"]}))
    assert _titles(hits) == {"Birds Sing at Dawn", "Cats and Their Purring"}
    assert store.query(_q("dogs", filters={"title": "No Such Paper"})) == []


def test_filter_date(filled):
    store, _ = filled
    for mode in ("dense", "sparse", "hybrid"):
        hits = store.query(_q("animals", mode=mode, limit=50, filters={"date": "Mar 13"}))
        assert _titles(hits) <= {"Cats and Their Purring", "Birds Sing at Dawn"}, mode
        assert all("Mar 13" in h.payload["dates"] for h in hits)
    hits = store.query(_q("dogs bark gluons", mode="dense", limit=50, filters={"date": ["Mar 14", "Mar 11"]}))
    assert _titles(hits) == {"Dogs Bark Loudly", "Quantum Chromodynamics on a Lattice", "Birds Sing at Dawn"}


def test_filter_paper_id(filled):
    store, _ = filled
    pid = PAPERS[2].paper_id
    hits = store.query(_q("dogs bark", mode="dense", limit=50, filters={"paper_id": pid}))
    assert hits and {h.payload["paper_id"] for h in hits} == {pid}


def test_filters_combine_with_and(filled):
    store, _ = filled
    hits = store.query(_q("x", mode="dense", limit=50, filters={"date": "Mar 11", "title": "Birds Sing at Dawn"}))
    assert _titles(hits) == {"Birds Sing at Dawn"}
    assert store.query(_q("x", mode="dense", limit=50, filters={"date": "Mar 14", "title": "Birds Sing at Dawn"})) == []


def test_filter_page(filled):
    store, _ = filled
    hits = store.query(_q("animals", mode="dense", limit=50, filters={"page": "002.txt"}))
    assert _titles(hits) == {"Dogs Bark Loudly", "Quantum Chromodynamics on a Lattice"}


@pytest.mark.parametrize("filters", [{"venue": "x"}, {"page": ""}, {"date": []}, {"title": [1]}, {"year": "recent"},
                                     {"year": [">=2024", "<2020"]}, {"year": True}, {"author": "  "}])
def test_bad_filter_raises_input_error(filled, filters):
    store, _ = filled
    with pytest.raises(InputError):
        store.query(_q("dogs", filters=filters))


def test_unknown_filter_message_lists_valid_ones(filled):
    store, _ = filled
    with pytest.raises(InputError, match="unknown filter 'venue'.*title.*paper_id.*date.*page.*year.*category.*author"):
        store.query(_q("dogs", filters={"venue": "x"}))


# -- congruence between backends on the sample corpus -----------------------------------

QUERIES = [q["question"] for q in map(json.loads, (REPO_ROOT / "eval/questions/dev.jsonl").read_text().splitlines()[:72:3])][:20]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    d = tmp_path_factory.mktemp("congruence")
    papers = load_papers([SAMPLE_CORPUS])
    stores = {}
    for backend in BACKENDS:
        s = Settings.load(None, data_dir=str(d), **{"store.backend": backend, "store.url": ":memory:"})
        stores[backend] = _open(backend, d, "c")
        ingest_papers(papers, s, EMB, stores[backend], progress=False)
    yield stores
    for st in stores.values():
        st.close()


def _assert_same(a, b, what):
    """Same ids in the same order (both backends apply rag.search.store.ranking's total order); scores agree
    to float32 precision (edge computes in float32, qdrant-client's local mode in float64)."""
    assert [h.id for h in a] == [h.id for h in b], what
    for x, y in zip(a, b):
        assert math.isclose(x.score, y.score, rel_tol=1e-5, abs_tol=1e-7), (what, x.score, y.score)


def test_congruence_counts_and_payloads(both):
    assert both["edge"].count() == both["server"].count() == 651
    ids = [h.id for h in both["edge"].query(QuerySpec(dense=EMB.embed_query("multimodal"), mode="dense", limit=100, exact=True))]
    assert both["edge"].payloads(ids, ["title", "text", "pages"]) == both["server"].payloads(ids, ["title", "text", "pages"])


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_congruence_rankings(both, mode):
    for q in QUERIES:
        spec = _q(q, mode=mode, limit=20, prefetch=50)
        a, b = both["edge"].query(spec), both["server"].query(spec)
        assert len(a) == len(b) == 20
        _assert_same(a, b, (mode, q))


def test_congruence_filtered(both):
    for q in QUERIES[:5]:
        for f in ({"date": "Mar 14"}, {"date": ["Mar 11", "Mar 13"]}):
            for mode in ("sparse", "hybrid"):
                spec = _q(q, mode=mode, limit=10, filters=f)
                _assert_same(both["edge"].query(spec), both["server"].query(spec), (q, f, mode))


# -- edge: persistence, locking, dimension ----------------------------------------------


def test_edge_persists_across_close_and_reopen(tmp_path):
    pts = _points(PAPERS)
    st = _open("edge", tmp_path)
    st.upsert(pts)
    before = [(h.id, h.score) for h in st.query(_q("dogs bark", limit=5))]
    st.close()
    st.close()  # closing twice is harmless
    st = _open("edge", tmp_path)
    try:
        assert st.count() == len(pts)
        assert st.payloads([pts[0].id], ["title"]) == {pts[0].id: {"title": pts[0].payload["title"]}}
        after = [(h.id, h.score) for h in st.query(_q("dogs bark", limit=5))]
        assert [i for i, _ in after] == [i for i, _ in before]
        assert all(math.isclose(x, y, rel_tol=1e-6) for (_, x), (_, y) in zip(after, before))
        # filters still work after reload (payload indexes persisted)
        assert _titles(st.query(_q("x", mode="dense", limit=50, filters={"date": "Mar 14"}))) == {"Dogs Bark Loudly"}
    finally:
        st.close()


def _venv_python() -> str:
    p = REPO_ROOT / ".venv" / "bin" / "python"
    return str(p) if p.exists() else sys.executable


def test_edge_second_process_gets_already_open(tmp_path):
    st = _open("edge", tmp_path)
    st.upsert(_points(PAPERS[:1]))
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from rag.config import StoreSettings\n"
        "from rag.errors import StoreError\n"
        "from rag.search.store import open_store\n"
        "try:\n"
        f"    open_store(StoreSettings(backend='edge'), Path({str(tmp_path)!r}), 't', {DIM})\n"
        "except StoreError as e:\n"
        "    print('STOREERROR', e)\n"
        "    sys.exit(3)\n"
        "print('OPENED')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    try:
        r = subprocess.run([_venv_python(), "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env)
        assert r.returncode == 3, r.stdout + r.stderr
        assert "STOREERROR" in r.stdout and "already open" in r.stdout
        assert st.count() == 1  # the holder is unaffected
    finally:
        st.close()
    # once the first process lets go, another can open it
    r = subprocess.run([_venv_python(), "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env)
    assert r.returncode == 0 and "OPENED" in r.stdout, r.stdout + r.stderr


def test_edge_other_dim_raises_store_error(tmp_path):
    st = _open("edge", tmp_path, dim=DIM)
    st.upsert(_points(PAPERS[:1]))
    st.close()
    with pytest.raises(StoreError, match=f"{DIM}-d"):
        _open("edge", tmp_path, dim=DIM * 2)
    st = _open("edge", tmp_path, dim=DIM)  # still usable with the right dim
    assert st.count() >= 1
    st.close()


def test_server_other_dim_raises_store_error(monkeypatch):
    import qdrant_client

    shared = qdrant_client.QdrantClient(location=":memory:")
    monkeypatch.setattr(qdrant_client, "QdrantClient", lambda *a, **kw: shared)
    st = open_store(StoreSettings(backend="server", url=":memory:"), Path("."), "dimcheck", DIM)
    st.upsert(_points(PAPERS[:1]))
    with pytest.raises(StoreError, match=f"{DIM}-d"):
        open_store(StoreSettings(backend="server", url=":memory:"), Path("."), "dimcheck", DIM * 2)
    again = open_store(StoreSettings(backend="server", url=":memory:"), Path("."), "dimcheck", DIM)
    assert again.count() >= 1
    shared.close()


def test_server_backend_needs_url(tmp_path):
    with pytest.raises(StoreError, match="store.url"):
        open_store(StoreSettings(backend="server"), tmp_path, "t", DIM)


def test_unreachable_server_raises_store_error(tmp_path):
    with pytest.raises(StoreError, match="cannot reach"):
        open_store(StoreSettings(backend="server", url="http://127.0.0.1:9"), tmp_path, "t", DIM)


# -- total order: ties ------------------------------------------------------------------


def test_cut_inside_a_tie_keeps_the_smallest_ids(store):
    """30 points with the same vectors tie on every score: any cut keeps the smallest ids, in id order."""
    import uuid

    text = "identical tied chunk"
    pts = [PointData(str(uuid.uuid5(uuid.NAMESPACE_URL, str(i))), EMB.embed_query(text), sparse_doc(text),
                     {"paper_id": f"p{i}", "title": f"T{i}"}) for i in range(30)]
    store.upsert(pts)
    expected = sorted(p.id for p in pts)
    for mode in ("dense", "sparse", "hybrid"):
        hits = store.query(_q(text, mode=mode, limit=3, prefetch=5))
        assert [h.id for h in hits] == expected[:3], mode


def test_hybrid_ties_broken_by_dense_then_sparse_then_id():
    from rag.search.store.ranking import StoredHit, fuse_rrf

    dense = [StoredHit("a", 0.9, {}), StoredHit("b", 0.8, {})]
    sparse = [StoredHit("b", 5.0, {}), StoredHit("a", 4.0, {})]
    fused = fuse_rrf(dense, sparse, k=60)
    assert fused[0].score == fused[1].score  # a: 1/60 + 1/61, b: 1/61 + 1/60
    assert [h.id for h in fused] == ["a", "b"]  # the higher dense score wins the tie
    assert (fused[0].dense, fused[0].sparse) == (0.9, 4.0)


def test_scroll_by_paper(filled):
    store, pts = filled
    dogs = PAPERS[1].paper_id
    got = store.scroll({"paper_id": dogs}, ["chunk", "text"])
    expected = sorted((p.id, {"chunk": p.payload["chunk"], "text": p.payload["text"]}) for p in pts if p.payload["paper_id"] == dogs)
    assert got == expected and len(got) >= 1
    assert store.scroll({"paper_id": "nope"}) == []
    assert len(store.scroll({}, [], limit=2)) == 2


# -- updates used by ingest: stale chunks, payload-only changes ---------------------------


def test_delete_stale_keeps_only_the_given_ids(filled):
    store, pts = filled
    long = Paper("Long Paper", "Many words in this sentence here. " * 30, ["009.txt (Mar 9)"])
    long_pts = _points([long])
    assert len(long_pts) >= 2
    store.upsert(long_pts)
    store.delete_stale([long.paper_id], [long_pts[0].id])
    assert store.count(long.paper_id) == 1 and set(store.payloads([p.id for p in long_pts], ["title"])) == {long_pts[0].id}
    assert store.count() == len(pts) + 1  # other papers untouched
    store.delete_stale([], [])  # nothing to do
    assert store.count() == len(pts) + 1


def test_set_paper_payload_changes_every_chunk_and_unsets_keys(filled):
    store, pts = filled
    dogs = PAPERS[1].paper_id
    ids = [pt.id for pt in pts if pt.payload["paper_id"] == dogs]
    store.set_paper_payload(dogs, {"id": "2401.00001"})
    store.set_paper_payload(dogs, {"pages": ["new.txt (Mar 20)"], "dates": ["Mar 20"]}, unset=["id"])
    got = store.payloads(ids)
    assert all(v["pages"] == ["new.txt (Mar 20)"] and "id" not in v and v["text"] for v in got.values())
    assert {h.payload["title"] for h in store.query(_q("x", mode="dense", limit=50, filters={"date": "Mar 20"}))} == {"Dogs Bark Loudly"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_hnsw_quantization_and_on_disk_settings_open_and_search(tmp_path, backend):
    settings = StoreSettings(backend=backend, url=":memory:" if backend == "server" else None, hnsw_m=8, hnsw_ef_construct=32,
                             hnsw_ef=64, quantization="int8", vectors_on_disk=True, payload_on_disk=True)
    st = open_store(settings, tmp_path, "big", DIM)
    try:
        st.upsert(_points(PAPERS))
        st.optimize()
        for use_q in (True, False):
            hits = st.query(QuerySpec(dense=EMB.embed_query("dogs bark"), mode="dense", limit=1, use_quantization=use_q))
            assert hits[0].payload["title"] == "Dogs Bark Loudly"
        hybrid = st.query(QuerySpec(dense=EMB.embed_query("dogs bark"), sparse=sparse_query("dogs bark"), limit=1))
        assert hybrid[0].payload["title"] == "Dogs Bark Loudly"  # hnsw_ef applies to the dense search only
    finally:
        st.close()
    if backend == "edge":  # reopening with other settings applies them to the shard's config
        st = open_store(StoreSettings(backend="edge"), tmp_path, "big", DIM)
        assert st.count() == len(_points(PAPERS))
        st.close()


# -- failures become one-line StoreErrors ------------------------------------------------


def test_disk_full_is_a_one_line_store_error(tmp_path, monkeypatch):
    st = _open("edge", tmp_path)
    try:
        def full(_op):
            raise Exception("Service internal error: No space left on device (os error 28)\nbacktrace...")

        monkeypatch.setattr(st, "_shard", type("S", (), {"update": staticmethod(full), "flush": lambda s: None, "close": lambda s: None})())
        with pytest.raises(StoreError) as ei:
            st.upsert(_points(PAPERS[:1]))
        msg = str(ei.value)
        assert "\n" not in msg and msg.startswith("upsert failed on edge:") and "disk is full" in msg
    finally:
        st._shard = None


def test_server_going_away_is_a_one_line_store_error():
    import httpx

    st = _open("server", Path("."))
    try:
        def down(*a, **kw):
            raise httpx.ConnectError("[Errno 111] Connection refused")

        st._client.upsert = down
        st._client.count = down
        with pytest.raises(StoreError, match="upsert failed on server:.*Connection refused.*is it running"):
            st.upsert(_points(PAPERS[:1]))
        with pytest.raises(StoreError, match="^count failed"):
            st.count()
    finally:
        st.close()


def test_facets(filled):
    store, pts = filled
    dates = dict(store.facet("dates"))
    assert dates["Mar 11"] == sum("Mar 11" in p.payload["dates"] for p in pts)
    assert set(dates) == {d for p in pts for d in p.payload["dates"]}
    assert set(dict(store.facet("sources"))) == {"000.txt", "001.txt", "002.txt", "003.txt"}


def test_facets_agree_across_backends(both):
    assert both["edge"].facet("dates") == both["server"].facet("dates")


def test_info(filled):
    store, pts = filled
    i = store.info()
    assert i["points"] == len(pts) and i["indexed_vectors"] >= 0 and i["segments"] >= 1


def test_a_backend_missing_a_method_cannot_be_built():
    """VectorStore is an ABC: a backend that forgets a method fails at construction, not with None later."""
    from rag.search.store import VectorStore
    from rag.search.store.edge import EdgeStore
    from rag.search.store.server import ServerStore

    class Partial(VectorStore):
        def upsert(self, points):
            pass

    with pytest.raises(TypeError, match="abstract"):
        Partial()
    for backend in (EdgeStore, ServerStore):
        assert not getattr(backend, "__abstractmethods__", set()), backend
