"""paper-rag: cited answers about research papers, from the papers themselves.

    >>> import rag                                   # doctest: +SKIP
    >>> app = rag.load()                             # cpu preset defaults, index under ./rag_data
    >>> app.ingest()                                 # the bundled sample corpus
    >>> app.search("Chinese multimodal math benchmark", k=3)
"""

from rag.app import App, load
from rag.config import Settings
from rag.errors import RagError

__all__ = ["App", "Settings", "RagError", "load"]
__version__ = "0.1.0"
