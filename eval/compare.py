"""Compare two eval runs: ``rag eval compare DIR_A DIR_B`` (metrics) or ``... --answers`` (record by record).

Prints one row per summary metric: A, B, B - A, and whether the two bootstrap 95% CIs
overlap. Non-overlapping CIs are a conservative sign of a real difference; overlapping
ones do not prove there is none (the two runs are paired on the same questions).

With ``--answers`` it compares the answers themselves, question by question (``ANSWER_FIELDS``: text, kind,
refusal, citations and their quotes, what was shown): the check that a change of code changes no answer.

Example:
    >>> a = {"mean": 0.5, "low": 0.4, "high": 0.6, "n": 10}
    >>> b = {"mean": 0.8, "low": 0.7, "high": 0.9, "n": 10}
    >>> ci_overlap(a, b), ci_overlap(a, dict(b, low=0.55))
    (False, True)
    >>> answer_diffs([{"id": "q1", "answer": "A [1].", "kind": "answer"}], [{"id": "q1", "answer": "B [1].", "kind": "answer"}])
    [('q1', 'answer', 'A [1].', 'B [1].')]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from rag.errors import InputError

GROUPS = (("system", "system"), ("extractive", "extractive"), ("bm25", "bm25"), ("closed_book", "closed-book"))
LATENCY_STATS = ("p50", "p95")


def load_summary(run_dir: str | Path) -> dict:
    path = Path(run_dir)
    if path.is_dir():
        path = path / "summary.json"
    if not path.is_file():
        raise InputError(f"{path}: no summary.json here; give an eval run folder (made by `rag eval`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg})") from None


def ci_overlap(a: Mapping | None, b: Mapping | None) -> bool | None:
    """Whether the [low, high] intervals overlap (``None`` if either is undefined)."""
    if not a or not b or a.get("low") is None or b.get("low") is None:
        return None
    return a["low"] <= b["high"] and b["low"] <= a["high"]


def compare_rows(sa: dict, sb: dict, scope: str = "overall") -> list[dict]:
    """Rows ``{metric, a, b, delta, overlap}`` for every metric in either summary (``scope``: overall or a type)."""
    ga = sa["overall"] if scope == "overall" else sa.get("by_type", {}).get(scope, {})
    gb = sb["overall"] if scope == "overall" else sb.get("by_type", {}).get(scope, {})
    rows = []
    for key, label in GROUPS:
        ma, mb = ga.get(key) or {}, gb.get(key) or {}
        for metric in list(ma) + [m for m in mb if m not in ma]:
            a, b = ma.get(metric), mb.get(metric)
            va, vb = (a or {}).get("mean"), (b or {}).get("mean")
            rows.append({"metric": f"{label} {metric}", "a": va, "b": vb,
                         "delta": vb - va if va is not None and vb is not None else None,
                         "overlap": ci_overlap(a, b)})
    for key, label in (("latency", "latency"),):
        la, lb = ga.get(key) or {}, gb.get(key) or {}
        for measure in list(la) + [m for m in lb if m not in la]:
            for stat in LATENCY_STATS:
                a, b = (la.get(measure) or {}), (lb.get(measure) or {})
                va, vb = a.get(stat), b.get(stat)
                if va is None and vb is None:
                    continue
                ca = {"low": a.get(f"{stat}_low"), "high": a.get(f"{stat}_high")} if va is not None else None
                cb = {"low": b.get(f"{stat}_low"), "high": b.get(f"{stat}_high")} if vb is not None else None
                rows.append({"metric": f"{label} {measure} {stat}", "a": va, "b": vb,
                             "delta": vb - va if va is not None and vb is not None else None,
                             "overlap": ci_overlap(ca, cb)})
    return rows


def _f(v, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def format_table(rows: list[dict], name_a: str = "A", name_b: str = "B") -> str:
    header = ("metric", name_a, name_b, "delta", "CIs overlap")
    body = [(r["metric"], _f(r["a"]), _f(r["b"]), _f(r["delta"], True),
             "-" if r["overlap"] is None else ("yes" if r["overlap"] else "NO")) for r in rows]
    widths = [max(len(str(x[i])) for x in [header, *body]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(b) for b in body)])


def compare(dir_a: str | Path, dir_b: str | Path, scope: str = "overall") -> str:
    """The printable comparison of two runs, with notes on what differs between them."""
    sa, sb = load_summary(dir_a), load_summary(dir_b)
    notes = [f"A: {dir_a}  ({sa.get('n_questions')} questions, config {sa.get('config_hash')}, "
             f"{(sa.get('models') or {}).get('embedding')} / {(sa.get('models') or {}).get('generation')})",
             f"B: {dir_b}  ({sb.get('n_questions')} questions, config {sb.get('config_hash')}, "
             f"{(sb.get('models') or {}).get('embedding')} / {(sb.get('models') or {}).get('generation')})"]
    ids_a, ids_b = sa.get("question_ids"), sb.get("question_ids")
    if ids_a is not None and ids_b is not None and set(ids_a) != set(ids_b):
        notes.append(f"warning: the runs cover different questions ({len(set(ids_a) - set(ids_b))} only in A, "
                     f"{len(set(ids_b) - set(ids_a))} only in B)")
    if scope != "overall" and scope not in sa.get("by_type", {}) and scope not in sb.get("by_type", {}):
        raise InputError(f"no question type {scope!r} in either run (types: {', '.join(sa.get('by_type', {}))})")
    rows = compare_rows(sa, sb, scope)
    title = "overall" if scope == "overall" else f"type {scope}"
    return "\n".join(notes) + f"\n\n[{title}]  delta = B - A; CIs overlap = 95% bootstrap intervals overlap\n" + format_table(rows)


ANSWER_FIELDS = ("answer", "shown", "kind", "refused", "refusal_reason", "citations", "quotes", "standalone_question")


def answer_diffs(recs_a: list[dict], recs_b: list[dict], fields=ANSWER_FIELDS) -> list[tuple[str, str, object, object]]:
    """(id, field, A's value, B's value) for every answered question of both runs where a field differs; a question
    in one run only is reported with the field ``present``."""
    by_b = {r["id"]: r for r in recs_b}
    out = []
    for ra in recs_a:
        rb = by_b.pop(ra["id"], None)
        if rb is None:
            out.append((ra["id"], "present", True, False))
            continue
        out += [(ra["id"], f, ra.get(f), rb.get(f)) for f in fields if ra.get(f) != rb.get(f)]
    out += [(i, "present", False, True) for i in by_b]
    return out


def compare_answers(dir_a: str | Path, dir_b: str | Path, limit: int = 20) -> tuple[str, int]:
    """The printable record-by-record comparison of two runs, and how many questions differ."""
    from eval.runner import RECORDS, read_records

    recs = []
    for d in (dir_a, dir_b):
        path = Path(d) / RECORDS if Path(d).is_dir() else Path(d)
        if not path.is_file():
            raise InputError(f"{path}: no records here; give an eval run folder (made by `rag eval`)")
        recs.append([r for r in read_records(path) if not r.get("error") and not r.get("retrieval_only")])
    diffs = answer_diffs(*recs)
    ids = list(dict.fromkeys(d[0] for d in diffs))
    lines = [f"A: {dir_a} ({len(recs[0])} answers)", f"B: {dir_b} ({len(recs[1])} answers)",
             f"{len(recs[0]) - len([i for i in ids if any(r['id'] == i for r in recs[0])])} of {len(recs[0])} answers "
             f"identical in {', '.join(ANSWER_FIELDS)}; {len(ids)} questions differ"]
    for i in ids[:limit]:
        lines.append(f"\n{i}:")
        lines += [f"  {f}:\n    A: {a!r}\n    B: {b!r}" for q, f, a, b in diffs if q == i]
    if len(ids) > limit:
        lines.append(f"\n... and {len(ids) - limit} more")
    return "\n".join(lines), len(ids)
