"""Embedded backend: a qdrant-edge shard in a folder (WAL, payload indexes, HNSW after optimize).

A second process opening the same folder gets a StoreError, never a corrupted index. The HNSW,
quantization and memory settings (``StoreSettings``) are given on every open, so a changed setting
applies to the segments built by the next ``optimize``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rag.config import StoreSettings
from rag.errors import StoreError
from rag.search.filters import INDEXED, INTEGER, conditions
from rag.search.store import DENSE, SPARSE, PointData, QuerySpec, StoredHit, VectorStore

FIRST_INDEXED = ("paper_id", "title", "dates", "sources")  # what an index made before the metadata filters has

log = logging.getLogger(__name__)


def edge_config(q, dim: int, settings: StoreSettings):
    """The shard configuration for ``settings`` (qdrant_edge module ``q``)."""
    cold, cached = q.Memory.Cold, q.Memory.Cached
    quant = q.ScalarQuantizationConfig(q.ScalarType.Int8, always_ram=True) if settings.quantization == "int8" else None
    return q.EdgeConfig(
        vectors={DENSE: q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine, memory=cold if settings.vectors_on_disk else cached)},
        sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
        hnsw_config=q.HnswIndexConfig(m=settings.hnsw_m, ef_construct=settings.hnsw_ef_construct, full_scan_threshold=10000),
        quantization_config=quant,
        payload_memory=cold if settings.payload_on_disk else cached,
    )


class EdgeStore(VectorStore):
    def __init__(self, path: Path, dim: int, settings: StoreSettings | None = None):
        import qdrant_edge as q

        self._q = q
        self._hnsw_ef = settings.hnsw_ef if settings is not None else None
        self.name = f"edge:{path}"
        self.path = path
        meta_file = path.parent / f"{path.name}.json"
        if meta_file.exists():
            meta = json.loads(meta_file.read_text())
            if meta.get("dim") != dim:
                raise StoreError(f"index {path} holds {meta.get('dim')}-d vectors, the model gives {dim}-d: use another --data-dir")
        cfg = edge_config(q, dim, settings or StoreSettings())
        try:
            if (path / "wal").exists() or (path / "segments").exists():
                self._shard = q.EdgeShard.load(str(path), cfg)
            else:
                path.mkdir(parents=True, exist_ok=True)
                self._shard = q.EdgeShard.create(str(path), cfg)
                meta_file.write_text(json.dumps({"dim": dim, "indexed": []}))
            self._index_fields(meta_file)
        except Exception as e:  # qdrant_edge raises plain Exception
            if "WouldBlock" in str(e):
                raise StoreError(
                    f"the index at {path} is already open in another process (a running `rag serve`?). "
                    "While `rag serve` runs, `rag ingest` and `rag search` go through it and its API answers "
                    "(/v1/chat/completions); otherwise stop that process, or use another --data-dir."
                ) from None
            raise StoreError(f"cannot open the index at {path}: {' '.join(str(e).split())}") from None

    def _index_fields(self, meta_file: Path) -> None:
        """Payload indexes for every filterable field (``rag.search.filters.INDEXED``); an index made by an
        earlier version gains the fields added since (the meta file lists those already indexed)."""
        q, meta = self._q, json.loads(meta_file.read_text())
        done = set(meta.get("indexed", FIRST_INDEXED))
        todo = {k: kind for k, kind in INDEXED.items() if k not in done}
        for field, kind in todo.items():
            schema = q.PayloadSchemaType.Integer if kind == INTEGER else q.PayloadSchemaType.Keyword
            self._shard.update(q.UpdateOperation.create_field_index(field, schema))
        if todo:
            meta_file.write_text(json.dumps({**meta, "indexed": sorted(done | set(todo))}))

    def _filter(self, filters: dict):
        q = self._q
        conds = [q.FieldCondition(c.key, match=q.MatchAny(list(c.any))) if c.any
                 else q.FieldCondition(c.key, range=q.RangeFloat(gte=c.gte, lte=c.lte)) for c in conditions(filters)]
        return q.Filter(must=conds) if conds else None

    def upsert(self, points: list[PointData]) -> None:
        q = self._q
        pts = [
            q.Point(p.id, {DENSE: p.dense, SPARSE: q.SparseVector(p.sparse.indices, p.sparse.values)}, p.payload)
            for p in points
        ]
        self._shard.update(q.UpdateOperation.upsert_points(pts))

    def _papers(self, paper_ids: list[str], must_not=None):
        q = self._q
        return q.Filter(must=[q.FieldCondition("paper_id", match=q.MatchAny(list(paper_ids)))], must_not=must_not)

    def delete_paper(self, paper_id: str) -> None:
        self._shard.update(self._q.UpdateOperation.delete_points_by_filter(self._papers([paper_id])))

    def delete_stale(self, paper_ids: list[str], keep_ids: list[str]) -> None:
        if paper_ids:
            q = self._q
            self._shard.update(q.UpdateOperation.delete_points_by_filter(self._papers(paper_ids, [q.HasIdCondition(set(keep_ids))])))

    def set_paper_payload(self, paper_id: str, fields: dict, unset: list[str] = ()) -> None:
        q, flt = self._q, self._papers([paper_id])
        self._shard.update(q.UpdateOperation.set_payload_by_filter(flt, fields))
        if unset:
            self._shard.update(q.UpdateOperation.delete_payload_by_filter(flt, list(unset)))

    def payloads(self, ids: list[str], fields: list[str] | None = None) -> dict[str, dict]:
        recs = self._shard.retrieve(ids, True if fields is None else fields, False)
        return {str(r.id): dict(r.payload or {}) for r in recs}

    def scroll(self, filters: dict, fields: list[str] | None = None, limit: int = 1000) -> list[tuple[str, dict]]:
        q = self._q
        recs, _ = self._shard.scroll(q.ScrollRequest(limit=limit, filter=self._filter(filters),
                                                     with_payload=True if fields is None else (fields or False)))
        return sorted((str(r.id), dict(r.payload or {})) for r in recs)

    def has_field(self, key: str) -> bool:
        q = self._q
        recs, _ = self._shard.scroll(q.ScrollRequest(limit=1, filter=q.Filter(must_not=[q.IsEmptyCondition(key)]), with_payload=False))
        return bool(recs)

    def info(self) -> dict:
        i = self._shard.info()
        return {"points": int(i.points_count), "indexed_vectors": int(i.indexed_vectors_count), "segments": int(i.segments_count)}

    def facet(self, field: str, limit: int = 1000) -> list[tuple[str, int]]:
        res = self._shard.facet(self._q.FacetRequest(field, limit=limit, exact=True))
        return sorted(((str(h.value), int(h.count)) for h in res.hits), key=lambda x: (-x[1], x[0]))

    def count(self, paper_id: str | None = None) -> int:
        return self._shard.count(self._q.CountRequest(exact=True, filter=self._papers([paper_id]) if paper_id else None))

    def _search_many(self, requests: list[tuple[QuerySpec, int]]) -> list[list[StoredHit]]:
        q = self._q
        out = []
        for spec, limit in requests:
            if spec.mode == "dense":
                query = q.Query.Nearest(spec.dense, using=DENSE)
            else:
                query = q.Query.Nearest(q.SparseVector(spec.sparse.indices, spec.sparse.values), using=SPARSE)
            params, ef = None, self._hnsw_ef if spec.mode == "dense" else None
            if spec.exact or not spec.use_quantization or ef:
                params = q.SearchParams(exact=spec.exact, hnsw_ef=ef,
                                         quantization=None if spec.use_quantization else q.QuantizationSearchParams(ignore=True))
            req = q.QueryRequest(limit=limit, query=query, filter=self._filter(spec.filters), params=params,
                                 with_payload=True if spec.fields is None else (spec.fields or False))
            out.append([StoredHit(str(p.id), float(p.score), dict(p.payload or {})) for p in self._shard.query(req)])
        return out

    def optimize(self) -> None:
        self._shard.optimize()

    def flush(self) -> None:
        self._shard.flush()

    def close(self) -> None:
        shard, self._shard = getattr(self, "_shard", None), None
        if shard is not None:
            try:
                shard.flush()
            finally:
                shard.close()
