import os
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    """gpu tests need CUDA; browser tests need Debian's chromium (scripts/setup.sh --dev installs it)."""
    cuda = False
    if any(item.get_closest_marker("gpu") for item in items):
        try:
            import torch

            cuda = torch.cuda.is_available()
        except ImportError:
            pass
    chromium = shutil.which("chromium") or os.path.exists("/usr/bin/chromium")
    for item in items:
        if item.get_closest_marker("gpu") and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if item.get_closest_marker("browser") and not chromium:
            item.add_marker(pytest.mark.skip(reason="needs chromium: sudo apt-get install chromium"))


@pytest.fixture(scope="session")
def real_data_dir(tmp_path_factory):
    """A data dir holding the sample corpus indexed with the real default embedder (built once per session).

    Open it with ``rag.load("cpu", data_dir=real_data_dir)`` and close the App when done: the
    embedded store allows one open App at a time.
    """
    import rag

    path = tmp_path_factory.mktemp("real-index")
    with rag.load("cpu", data_dir=path) as app:
        app.ingest(progress=False)
    return path
