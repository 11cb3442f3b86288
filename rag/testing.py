"""Small, deterministic fakes for unit tests. Never used by the product itself.

``FakeEmbedder`` hashes words into a fixed-size bag-of-words vector, so texts sharing words
are similar: enough to test ranking logic without loading a model.

Example:
    >>> e = FakeEmbedder()
    >>> a, b, c = e.embed_query("dogs bark"), e.embed_query("dogs bark loudly"), e.embed_query("quantum chromodynamics")
    >>> sum(x * y for x, y in zip(a, b)) > sum(x * y for x, y in zip(a, c))
    True
"""

from __future__ import annotations

import hashlib
import math
import re


class FakeEmbedder:
    dim = 64
    model_id = "fake-bow-64"

    def _vec(self, text: str) -> list[float]:
        v = [0.0] * self.dim
        for w in re.findall(r"[a-z0-9]+", text.lower()):
            h = int(hashlib.md5(w.encode()).hexdigest(), 16)
            v[h % self.dim] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / n for x in v] if any(v) else [1.0 / math.sqrt(self.dim)] * self.dim

    def embed_documents(self, texts: list[str], progress: bool | None = None) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)
