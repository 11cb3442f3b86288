"""Both Qdrant backends behind one interface: CRUD, filters, congruence, persistence, locking."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.chunking import chunk_paper, paper_hash
from rag.config import REPO_ROOT, SAMPLE_CORPUS, ChunkSettings, Settings, StoreSettings
from rag.corpus import Paper, load_papers
from rag.errors import InputError, StoreError
from rag.ingest import ingest_papers
from rag.store import PointData, QuerySpec, open_store, sparse_doc, sparse_query
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
        h = paper_hash(p, s)
        for c in chunk_paper(p, s):
            out.append(PointData(c.point_id, EMB.embed_query(c.embed_text), sparse_doc(c.embed_text), c.payload(h)))
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
    got = store.payloads([pt.id for pt in pts], ["title", "paper_hash"])
    assert set(got) == {pt.id for pt in pts}
    for pt in pts:
        assert got[pt.id] == {"title": pt.payload["title"], "paper_hash": pt.payload["paper_hash"]}


def test_upsert_same_ids_is_idempotent(filled):
    store, pts = filled
    store.upsert(pts)
    assert store.count() == len(pts)


def test_upsert_replaces_payload(filled):
    store, pts = filled
    changed = PointData(pts[0].id, pts[0].dense, pts[0].sparse, {**pts[0].payload, "paper_hash": "new"})
    store.upsert([changed])
    assert store.count() == len(pts)
    assert store.payloads([pts[0].id], ["paper_hash"])[pts[0].id] == {"paper_hash": "new"}


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


@pytest.mark.parametrize("filters", [{"author": "x"}, {"page": ""}, {"date": []}, {"title": [1]}])
def test_bad_filter_raises_input_error(filled, filters):
    store, _ = filled
    with pytest.raises(InputError):
        store.query(_q("dogs", filters=filters))


def test_unknown_filter_message_lists_valid_ones(filled):
    store, _ = filled
    with pytest.raises(InputError, match="unknown filter 'author'.*date.*page.*paper_id.*title"):
        store.query(_q("dogs", filters={"author": "x"}))


# -- congruence between backends on the sample corpus -----------------------------------

QUERIES = [json.loads(line)["question"] for line in (REPO_ROOT / "eval/questions/dev.jsonl").read_text().splitlines()[::3]][:20]


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


def _groups(hits, limit):
    """Hits as (score, sorted ids) groups of equal scores (rel 1e-6); a group cut off by `limit` is dropped.

    Backends break exact ties differently (and edge compares float32 cosines where the
    server's local mode uses float64), so the order inside a tie group is not compared.
    """
    groups: list[tuple[float, list[str]]] = []
    for h in hits:
        if groups and math.isclose(h.score, groups[-1][0], rel_tol=1e-6):
            groups[-1][1].append(h.id)
        else:
            groups.append((h.score, [h.id]))
    if len(hits) == limit and groups:
        groups.pop()
    return [(s, sorted(ids)) for s, ids in groups]


def _assert_same(a, b, limit, what):
    ga, gb = _groups(a, limit), _groups(b, limit)
    n = min(len(ga), len(gb))
    assert n >= 1, what
    assert [ids for _, ids in ga[:n]] == [ids for _, ids in gb[:n]], what
    for (sa, _), (sb, _) in zip(ga[:n], gb[:n]):
        assert math.isclose(sa, sb, rel_tol=1e-4), (what, sa, sb)


def test_congruence_counts_and_payloads(both):
    assert both["edge"].count() == both["server"].count() == 651
    ids = [h.id for h in both["edge"].query(QuerySpec(dense=EMB.embed_query("multimodal"), mode="dense", limit=100, exact=True))]
    assert both["edge"].payloads(ids, ["title", "text", "pages"]) == both["server"].payloads(ids, ["title", "text", "pages"])


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_congruence_single_rankings(both, mode):
    limit = 20
    exact_order = 0
    for q in QUERIES:
        spec = _q(q, mode=mode, limit=limit)
        a, b = both["edge"].query(spec), both["server"].query(spec)
        assert len(a) == len(b) == limit
        _assert_same(a, b, limit, (mode, q))
        exact_order += [h.id for h in a[:10]] == [h.id for h in b[:10]]
    assert exact_order >= len(QUERIES) - 3, f"only {exact_order}/{len(QUERIES)} top-10 rankings identical id by id"


def test_congruence_hybrid(both):
    """Hybrid (RRF of the dense and BM25 prefetches) agrees whenever the prefetch rankings agree id by id.

    Where a prefetch contains a score tie the backends may order it differently, so the fused
    RRF scores can legitimately differ; those queries are counted, and must be few.
    """
    limit, prefetch = 10, 50
    checked = 0
    for q in QUERIES:
        prefetch_same = all(
            [h.id for h in both["edge"].query(_q(q, mode=m, limit=prefetch))]
            == [h.id for h in both["server"].query(_q(q, mode=m, limit=prefetch))]
            for m in ("dense", "sparse")
        )
        spec = _q(q, limit=limit, prefetch=prefetch)
        a, b = both["edge"].query(spec), both["server"].query(spec)
        assert len(a) == len(b) == limit
        if prefetch_same:
            checked += 1
            _assert_same(a, b, limit, ("hybrid", q))
    assert checked >= len(QUERIES) - 4, f"only {checked}/{len(QUERIES)} queries had tie-free prefetches"


def test_congruence_filtered(both):
    for q in QUERIES[:5]:
        for f in ({"date": "Mar 14"}, {"date": ["Mar 11", "Mar 13"]}):
            spec = _q(q, mode="sparse", limit=10, filters=f)
            _assert_same(both["edge"].query(spec), both["server"].query(spec), 10, (q, f))


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
        "from rag.store import open_store\n"
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
