"""Search: the embedding model, the vector store (Qdrant, two backends behind one interface) and retrieval.

* ``embedding``: sentence-transformers models by name (or a PyPI-shipped copy);
* ``store``: ``VectorStore`` with the in-process qdrant-edge backend and the qdrant-client server backend;
* ``retrieval``: dense + BM25 fused with RRF, one hit per paper (``Retriever``, ``Hit``).
"""
