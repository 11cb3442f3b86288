"""Server backend: qdrant-client against a Qdrant server or cluster by URL.

``url=":memory:"`` runs qdrant-client's local mode in memory (the stand-in for a server in
tests). Local mode on disk is deliberately not offered: it is slow and not thread-safe.
"""

from __future__ import annotations

import os

from rag.config import StoreSettings
from rag.errors import StoreError
from rag.search.filters import INDEXED, INTEGER, conditions
from rag.search.store import DENSE, SPARSE, PointData, QuerySpec, StoredHit, VectorStore
from rag.search.store.ranking import f32


class ServerStore(VectorStore):
    def __init__(self, url: str, api_key: str | None, collection: str, dim: int, settings: StoreSettings | None = None):
        from qdrant_client import QdrantClient, models

        self._m = models
        self._hnsw_ef = settings.hnsw_ef if settings is not None else None
        self.name = f"server:{url}/{collection}"
        self.collection = collection
        try:
            if url == ":memory:":
                self._client = QdrantClient(location=":memory:")
            else:
                self._client = QdrantClient(url=url, api_key=api_key or os.environ.get("QDRANT_API_KEY"), timeout=30)
            exists = self._client.collection_exists(collection)
        except Exception as e:
            raise StoreError(f"cannot reach the Qdrant server at {url}: {' '.join(str(e).split())}. Is it running? (or use store.backend: edge)") from None
        if exists:
            size = self._client.get_collection(collection).config.params.vectors[DENSE].size
            if size != dim:
                raise StoreError(f"collection {collection} holds {size}-d vectors, the model gives {dim}-d")
            self._index_fields(url, set(self._client.get_collection(collection).payload_schema or {}))
            return
        s = settings or StoreSettings()
        quant = None
        if s.quantization == "int8":
            quant = models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, always_ram=True))
        self._client.create_collection(
            collection,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE, on_disk=s.vectors_on_disk)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            hnsw_config=models.HnswConfigDiff(m=s.hnsw_m, ef_construct=s.hnsw_ef_construct),
            quantization_config=quant,
            on_disk_payload=s.payload_on_disk,
        )
        self._index_fields(url, set())

    def _index_fields(self, url: str, done: set[str]) -> None:
        """Payload indexes for every filterable field not indexed yet (a collection made by an earlier version
        gains the fields added since). Local mode (``:memory:``) ignores payload indexes, and warns: skipped."""
        if url == ":memory:":
            return
        m = self._m
        for field, kind in INDEXED.items():
            if field not in done:
                schema = m.PayloadSchemaType.INTEGER if kind == INTEGER else m.PayloadSchemaType.KEYWORD
                self._client.create_payload_index(self.collection, field, schema)

    def _filter(self, filters: dict):
        m = self._m
        conds = [m.FieldCondition(key=c.key, match=m.MatchAny(any=list(c.any))) if c.any
                 else m.FieldCondition(key=c.key, range=m.Range(gte=c.gte, lte=c.lte)) for c in conditions(filters)]
        return m.Filter(must=conds) if conds else None

    def _paper_filter(self, paper_ids: list[str], must_not=None):
        m = self._m
        return m.Filter(must=[m.FieldCondition(key="paper_id", match=m.MatchAny(any=list(paper_ids)))], must_not=must_not)

    def upsert(self, points: list[PointData]) -> None:
        m = self._m
        pts = [
            m.PointStruct(id=p.id, vector={DENSE: p.dense, SPARSE: m.SparseVector(indices=p.sparse.indices, values=p.sparse.values)}, payload=p.payload)
            for p in points
        ]
        self._client.upsert(self.collection, pts, wait=True)

    def delete_paper(self, paper_id: str) -> None:
        self._client.delete(self.collection, points_selector=self._m.FilterSelector(filter=self._paper_filter([paper_id])), wait=True)

    def delete_stale(self, paper_ids: list[str], keep_ids: list[str]) -> None:
        if paper_ids:
            m = self._m
            flt = self._paper_filter(paper_ids, [m.HasIdCondition(has_id=list(keep_ids))])
            self._client.delete(self.collection, points_selector=m.FilterSelector(filter=flt), wait=True)

    def set_paper_payload(self, paper_id: str, fields: dict, unset: list[str] = ()) -> None:
        sel = self._m.FilterSelector(filter=self._paper_filter([paper_id]))
        self._client.set_payload(self.collection, payload=fields, points=sel, wait=True)
        if unset:
            self._client.delete_payload(self.collection, keys=list(unset), points=sel, wait=True)

    def payloads(self, ids: list[str], fields: list[str] | None = None) -> dict[str, dict]:
        recs = self._client.retrieve(self.collection, ids, with_payload=True if fields is None else fields, with_vectors=False)
        return {str(r.id): dict(r.payload or {}) for r in recs}

    def scroll(self, filters: dict, fields: list[str] | None = None, limit: int = 1000) -> list[tuple[str, dict]]:
        recs, _ = self._client.scroll(self.collection, scroll_filter=self._filter(filters), limit=limit,
                                      with_payload=True if fields is None else (fields or False), with_vectors=False)
        return sorted((str(r.id), dict(r.payload or {})) for r in recs)

    def info(self) -> dict:
        c = self._client.get_collection(self.collection)
        return {"points": int(c.points_count or 0), "indexed_vectors": int(c.indexed_vectors_count or 0),
                "segments": int(c.segments_count or 0)}

    def has_field(self, key: str) -> bool:
        m = self._m
        flt = m.Filter(must_not=[m.IsEmptyCondition(is_empty=m.PayloadField(key=key))])
        recs, _ = self._client.scroll(self.collection, scroll_filter=flt, limit=1, with_payload=False)
        return bool(recs)

    def facet(self, field: str, limit: int = 1000) -> list[tuple[str, int]]:
        res = self._client.facet(self.collection, field, limit=limit, exact=True)
        return sorted(((str(h.value), int(h.count)) for h in res.hits), key=lambda x: (-x[1], x[0]))

    def count(self, paper_id: str | None = None) -> int:
        flt = self._paper_filter([paper_id]) if paper_id else None
        return self._client.count(self.collection, count_filter=flt, exact=True).count

    def _search_many(self, requests: list[tuple[QuerySpec, int]]) -> list[list[StoredHit]]:
        m = self._m
        batch = []
        for spec, limit in requests:
            dense = spec.mode == "dense"
            query = spec.dense if dense else m.SparseVector(indices=spec.sparse.indices, values=spec.sparse.values)
            params, ef = None, self._hnsw_ef if dense else None
            if spec.exact or not spec.use_quantization or ef:
                params = m.SearchParams(exact=spec.exact, hnsw_ef=ef,
                                         quantization=None if spec.use_quantization else m.QuantizationSearchParams(ignore=True))
            batch.append(m.QueryRequest(query=query, using=DENSE if dense else SPARSE, limit=limit, filter=self._filter(spec.filters),
                                        params=params, with_payload=True if spec.fields is None else (spec.fields or False)))
        responses = self._client.query_batch_points(self.collection, batch)  # one round trip
        # float32 scores, as a Qdrant server computes them (local mode uses float64)
        return [[StoredHit(str(p.id), f32(p.score), dict(p.payload or {})) for p in r.points] for r in responses]

    def optimize(self) -> None:
        pass  # a server builds its HNSW index in the background

    def flush(self) -> None:
        pass

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()
