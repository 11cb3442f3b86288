"""Same index, same question, same answer: fresh processes, different question orders (real CPU models).

Each process asks the same questions in its own order, so an answer that depended on what was
asked before (llama.cpp's prompt cache), on per-process hash seeds (Qdrant's tie order) or on
thread timing would differ here.
"""

import json
import os
import subprocess
import sys

import pytest

from rag.config import REPO_ROOT

pytestmark = pytest.mark.slow

QUESTIONS = [
    "Which benchmark evaluates Chinese multimodal math and how large is it?",
    "What is NVLM 1.0?",
    "What learning rate did the original BERT paper use for pre-training?",
]
SEARCHES = [json.loads(line)["question"] for line in (REPO_ROOT / "eval/questions/dev.jsonl").read_text().splitlines()
            if "question" in json.loads(line)][:40]

SCRIPT = r"""
import json, sys
import rag
order, data_dir, questions, searches = json.loads(sys.argv[1])
out = {"hits": {}, "answers": {}}
with rag.load("cpu", data_dir=data_dir) as app:
    for q in searches[::order]:
        r = app.retrieve(q, k=10, one_per_paper=False)
        out["hits"][q] = [[h.paper_id, h.chunk, h.score] for h in r.hits] + [r.best_dense]
    for q in questions[::order]:
        a = app.ask(q)
        out["answers"][q] = [a.text, [c.title for c in a.citations], a.refused, [h.paper_id for h in a.sources]]
print("RESULT " + json.dumps(out, sort_keys=True))
"""


def _run(order: int, data_dir) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONHASHSEED": "random"}
    arg = json.dumps([order, str(data_dir), QUESTIONS, SEARCHES])
    r = subprocess.run([sys.executable, "-c", SCRIPT, arg], capture_output=True, text=True, timeout=900, cwd=REPO_ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_three_fresh_processes_agree(real_data_dir):
    runs = [_run(order, real_data_dir) for order in (1, -1, 1)]
    assert runs[0]["hits"] == runs[1]["hits"] == runs[2]["hits"]
    for q in QUESTIONS:
        assert runs[0]["answers"][q] == runs[1]["answers"][q] == runs[2]["answers"][q], q
