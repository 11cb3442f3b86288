"""`rag ask QUESTION` (one cited answer) and `rag chat` (a terminal conversation with follow-ups).

Example:
    >>> import argparse
    >>> sub = argparse.ArgumentParser().add_subparsers(); register(sub)
    >>> sorted(sub.choices)
    ['ask', 'chat']
"""

from __future__ import annotations

import io
import json
import sys

from rag.answer import Answer
from rag.cli_options import add_common, load_app
from rag.errors import RagError


def register(sub) -> None:
    p = sub.add_parser("ask", help="a cited answer from the local LLM")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="sources to retrieve (default: retrieval.k)")
    p.add_argument("--json", action="store_true", help='print {"answer", "citations", "refused", ...} as JSON')
    p.add_argument("--no-stream", action="store_true", help="print the answer only when it is complete")
    add_common(p)
    p.set_defaults(handler=cmd_ask)

    p = sub.add_parser("chat", help="a terminal conversation; follow-up questions use the history")
    p.add_argument("-k", type=int, default=None, help="sources to retrieve (default: retrieval.k)")
    add_common(p)
    p.set_defaults(handler=cmd_chat)


def print_answer(answer: Answer, out=None) -> None:
    """The answer, then each cited paper with its quotes (Answer.format)."""
    out = out or sys.stdout
    print(answer.format(), file=out)
    if answer.standalone_question and answer.standalone_question != answer.question:
        print(f"\n(understood as: {answer.standalone_question})", file=out)


def stream_to_terminal(stream, show: bool) -> Answer | None:
    """Show checked text as it comes (dimmed, on stderr when a terminal); return the final Answer."""
    answer, live = None, show and sys.stderr.isatty()
    for item in stream:
        if isinstance(item, str) and live:
            sys.stderr.write(f"\x1b[2m{item}\x1b[0m")
            sys.stderr.flush()
        elif isinstance(item, Answer):
            answer = item
    if live:
        sys.stderr.write("\r\x1b[2K\n")
    return answer


def cmd_ask(args) -> int:
    with load_app(args) as app:
        answer = stream_to_terminal(app.ask_stream(args.question, k=args.k), show=not (args.json or args.no_stream))
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_answer(answer)
    return 0


def _tolerant_stdin() -> None:
    """Bytes that are not UTF-8 become U+FFFD instead of crashing input()."""
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="replace")


def cmd_chat(args) -> int:
    _tolerant_stdin()
    messages: list[dict] = []
    with load_app(args) as app:
        print("Ask about the indexed papers. Empty line or Ctrl-D to quit; /new starts a new conversation.")
        while True:
            try:
                question = input("\n> ").strip()
            except EOFError:
                break
            if not question:
                break
            if question == "/new":
                messages = []
                continue
            try:
                answer = stream_to_terminal(app.chat_stream([*messages, {"role": "user", "content": question}], k=args.k), True)
            except RagError as e:
                print(f"error: {e}")
                continue
            print_answer(answer)
            messages += [{"role": "user", "content": question},
                         {"role": "assistant", "content": answer.text, "papers": [c.paper_id for c in answer.citations]}]
    return 0
