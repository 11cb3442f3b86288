"""The ``rag eval`` command.

    rag eval [--questions FILE] [--out DIR] [--limit N] [--retrieval-only] [--no-baselines]
    rag eval compare DIR_A DIR_B [--type TYPE]
    rag eval validate FILE

``register(sub)`` adds it to the ``rag`` subparsers; it uses only ``rag.cli_options`` (eval never
imports the serving layer).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rag.cli_options import add_common, load_app, settings_from
from rag.errors import InputError

DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "questions" / "test.jsonl"


def register(sub) -> argparse.ArgumentParser:
    """Add ``rag eval`` (with ``compare`` and ``validate`` sub-actions) to the ``rag`` subparsers."""
    p = sub.add_parser("eval", help="offline evaluation: retrieval, answers, baselines; compare runs; validate question files",
                       description="Run the question set through the system and write records.jsonl, summary.json and "
                                   "report.md to --out. Re-running into the same --out resumes (questions already "
                                   "recorded with the same config are skipped).")
    p.add_argument("--questions", default=str(DEFAULT_QUESTIONS), metavar="FILE",
                   help="question file (JSON lines; default: eval/questions/test.jsonl)")
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default: eval/runs/<timestamp>)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N questions")
    p.add_argument("--retrieval-only", action="store_true", help="retrieval metrics only: no LLM")
    p.add_argument("--no-baselines", action="store_true", help="skip the BM25-only, extractive and closed-book baselines")
    p.add_argument("--skip-validation", action="store_true", help="run even if the question file does not validate against the corpus")
    add_common(p)
    p.set_defaults(handler=cmd_eval)

    actions = p.add_subparsers(dest="eval_action", metavar="{compare,validate}")
    c = actions.add_parser("compare", help="diff the summary metrics (or with --answers the answers) of two runs")
    c.add_argument("run_a", metavar="DIR_A")
    c.add_argument("run_b", metavar="DIR_B")
    c.add_argument("--type", default="overall", help="compare one question type instead of overall")
    c.add_argument("--answers", action="store_true",
                   help="compare the answers record by record (text, kind, citations, quotes); exit 1 if any differs")
    c.set_defaults(handler=cmd_compare)

    v = actions.add_parser("validate", help="check a question file against the corpus (exit 2 on errors)")
    v.add_argument("file", metavar="FILE")
    add_common(v, inherit=True)  # options given before `validate` (rag eval --config x validate F) are kept
    v.set_defaults(handler=cmd_validate)
    return p


def cmd_validate(args) -> int:
    from eval.questions import load_questions, validate, corpus_index

    settings = settings_from(args)
    questions = load_questions(args.file)
    titles, abstracts = corpus_index(settings.corpus)
    errors = validate(questions, titles, abstracts)
    if not questions:
        errors.append("no questions in the file")
    for e in errors:
        print(f"{args.file}: {e}")
    if errors:
        print(f"{len(errors)} error(s) in {args.file}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for q in questions:
        counts[q["type"]] = counts.get(q["type"], 0) + 1
    print(f"OK: {len(questions)} questions ({', '.join(f'{t} {n}' for t, n in counts.items())}) "
          f"valid against {len(titles)} corpus papers")
    return 0


def cmd_compare(args) -> int:
    from eval.compare import compare, compare_answers

    if args.answers:
        text, n_diff = compare_answers(args.run_a, args.run_b)
        print(text)
        return 1 if n_diff else 0
    print(compare(args.run_a, args.run_b, scope=args.type))
    return 0


def summary_text(summary: dict) -> str:
    """A compact table of the overall metrics (system, extractive, BM25, closed book) for the terminal."""
    from eval.report import LABELS, fmt_ci

    o = summary["overall"]
    groups = [g for g in ("system", "extractive", "bm25", "closed_book") if g in o]
    names = list(o["system"])
    header = ["metric", *groups]
    rows = [[LABELS.get(m, m)] + [fmt_ci((o[g] or {}).get(m)) for g in groups] for m in names]
    for key, lat in o.get("latency", {}).items():
        if lat.get("n"):
            rows.append([f"{LABELS.get(key, key)} p50 / p95", f"{lat['p50']:.3f} / {lat['p95']:.3f}"] + [""] * (len(groups) - 1))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, rows)])


def cmd_eval(args) -> int:
    from eval.questions import corpus_index, load_questions, validate
    from eval.report import write_report
    from eval.runner import BASELINES, run_eval

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    questions = load_questions(args.questions)
    if not questions:
        raise InputError(f"{args.questions}: no questions")
    out = Path(args.out) if args.out else Path("eval") / "runs" / time.strftime("%Y%m%d-%H%M%S")
    with load_app(args) as app:
        if not args.skip_validation:
            titles, abstracts = corpus_index(app.settings.corpus)
            errors = validate(questions, titles, abstracts)
            if errors:
                for e in errors[:20]:
                    print(f"{args.questions}: {e}", file=sys.stderr)
                raise InputError(f"{args.questions}: {len(errors)} validation error(s) against the corpus "
                                 "(see `rag eval validate`; --skip-validation runs anyway)")
        if app.count() == 0:
            raise InputError(f"the index in {app.settings.data_dir} is empty: run `rag ingest` with the same "
                             "--config/--data-dir first")
        baselines = () if args.no_baselines else BASELINES
        summary = run_eval(app, questions, out, limit=args.limit, retrieval_only=args.retrieval_only,
                           baselines=baselines, progress=True, questions_file=str(args.questions),
                           command=" ".join(["rag", *sys.argv[1:]]) if sys.argv[1:] else None)
    report = write_report(out)
    print(summary_text(summary))
    print(f"\n{summary['n_questions']} questions, {summary['n_errors']} errors; "
          f"records, summary and report in {out}/ ({report.name})")
    return 1 if summary["n_errors"] == summary["n_questions"] else 0
