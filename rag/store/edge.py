"""Embedded backend: a qdrant-edge shard in a folder (WAL, payload indexes, HNSW after optimize).

A second process opening the same folder gets a StoreError, never a corrupted index.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rag.errors import StoreError
from rag.store import DENSE, FILTER_FIELDS, SPARSE, PointData, QuerySpec, StoredHit, VectorStore, normalize_filters

log = logging.getLogger(__name__)


class EdgeStore(VectorStore):
    def __init__(self, path: Path, dim: int):
        import qdrant_edge as q

        self._q = q
        self.name = f"edge:{path}"
        self.path = path
        meta_file = path.parent / f"{path.name}.json"
        if meta_file.exists():
            meta = json.loads(meta_file.read_text())
            if meta.get("dim") != dim:
                raise StoreError(f"index {path} holds {meta.get('dim')}-d vectors, the model gives {dim}-d: use another --data-dir")
        try:
            if (path / "wal").exists() or (path / "segments").exists():
                self._shard = q.EdgeShard.load(str(path))
            else:
                path.mkdir(parents=True, exist_ok=True)
                cfg = q.EdgeConfig(
                    vectors={DENSE: q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine)},
                    sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
                )
                self._shard = q.EdgeShard.create(str(path), cfg)
                for field in ["paper_id", *FILTER_FIELDS.values()]:
                    self._shard.update(q.UpdateOperation.create_field_index(field, q.PayloadSchemaType.Keyword))
                meta_file.write_text(json.dumps({"dim": dim}))
        except Exception as e:  # qdrant_edge raises plain Exception
            if "WouldBlock" in str(e):
                raise StoreError(
                    f"the index at {path} is already open in another process (a running `rag serve`?). "
                    "Stop that process, or use another --data-dir."
                ) from None
            raise StoreError(f"cannot open the index at {path}: {e}") from None

    def _filter(self, filters: dict):
        q = self._q
        conds = [q.FieldCondition(k, match=q.MatchAny(v)) for k, v in normalize_filters(filters).items()]
        return q.Filter(must=conds) if conds else None

    def upsert(self, points: list[PointData]) -> None:
        q = self._q
        pts = [
            q.Point(p.id, {DENSE: p.dense, SPARSE: q.SparseVector(p.sparse.indices, p.sparse.values)}, p.payload)
            for p in points
        ]
        self._shard.update(q.UpdateOperation.upsert_points(pts))

    def delete_paper(self, paper_id: str) -> None:
        q = self._q
        self._shard.update(q.UpdateOperation.delete_points_by_filter(q.Filter(must=[q.FieldCondition("paper_id", match=q.MatchValue(paper_id))])))

    def payloads(self, ids: list[str], fields: list[str] | None = None) -> dict[str, dict]:
        recs = self._shard.retrieve(ids, True if fields is None else fields, False)
        return {str(r.id): dict(r.payload or {}) for r in recs}

    def scroll(self, filters: dict, fields: list[str] | None = None, limit: int = 1000) -> list[tuple[str, dict]]:
        q = self._q
        recs, _ = self._shard.scroll(q.ScrollRequest(limit=limit, filter=self._filter(filters),
                                                     with_payload=True if fields is None else (fields or False)))
        return sorted((str(r.id), dict(r.payload or {})) for r in recs)

    def count(self, paper_id: str | None = None) -> int:
        q = self._q
        flt = q.Filter(must=[q.FieldCondition("paper_id", match=q.MatchValue(paper_id))]) if paper_id else None
        return self._shard.count(q.CountRequest(exact=True, filter=flt))

    def _search_many(self, requests: list[tuple[QuerySpec, int]]) -> list[list[StoredHit]]:
        q = self._q
        out = []
        for spec, limit in requests:
            if spec.mode == "dense":
                query = q.Query.Nearest(spec.dense, using=DENSE)
            else:
                query = q.Query.Nearest(q.SparseVector(spec.sparse.indices, spec.sparse.values), using=SPARSE)
            req = q.QueryRequest(limit=limit, query=query, filter=self._filter(spec.filters),
                                 params=q.SearchParams(exact=True) if spec.exact else None, with_payload=True if spec.fields is None else (spec.fields or False))
            out.append([StoredHit(str(p.id), float(p.score), dict(p.payload or {})) for p in self._shard.query(req)])
        return out

    def optimize(self) -> None:
        self._shard.optimize()

    def flush(self) -> None:
        self._shard.flush()

    def close(self) -> None:
        if getattr(self, "_shard", None) is not None:
            self._shard.flush()
            self._shard.close()
            self._shard = None
