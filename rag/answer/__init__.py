"""The answer stage: a question in, a cited ``Answer`` (or an honest refusal) out.

The result types live in ``rag.answer.result`` and are re-exported here (``from rag.answer import Answer``).
How a question flows through the modules of this package: docs/architecture.md.
"""

from rag.answer.result import (ANSWER, DECLINED_KINDS, EMERGENCY, EXTRACTIVE, INJECTION, LIST, OFF_TOPIC, REFUSAL,
                               Answer, Citation, Quote, Sources)

__all__ = ["ANSWER", "DECLINED_KINDS", "EMERGENCY", "EXTRACTIVE", "INJECTION", "LIST", "OFF_TOPIC", "REFUSAL", "Answer",
           "Citation", "Quote", "Sources"]
