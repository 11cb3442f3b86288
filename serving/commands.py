"""Subcommands beyond ingest/search: ask, chat (here), serve (serving/serve_cmd.py), eval (eval/eval_cmd.py).

Heavy parts (the LLM, gradio, matplotlib) are imported only when a command runs.
"""

from __future__ import annotations

import json
import sys


def add_subcommands(sub, common) -> None:
    p = sub.add_parser("ask", help="a cited answer from the local LLM")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="sources to retrieve (default: retrieval.k)")
    p.add_argument("--json", action="store_true", help='print {"answer", "citations", "refused", ...} as JSON')
    p.add_argument("--no-stream", action="store_true", help="print the answer only when it is complete")
    common(p)
    p.set_defaults(handler=cmd_ask)

    p = sub.add_parser("chat", help="a terminal conversation; follow-up questions use the history")
    p.add_argument("-k", type=int, default=None)
    common(p)
    p.set_defaults(handler=cmd_chat)

    from eval.eval_cmd import add_eval_command
    from serving.serve_cmd import add_serve_command

    add_serve_command(sub, common)
    add_eval_command(sub, common)


def _print_answer(answer, out=sys.stdout) -> None:
    """The answer, then each cited paper with the quotes it was cited for (Answer.format)."""
    print(answer.format(), file=out)
    if answer.standalone_question and answer.standalone_question != answer.question:
        print(f"\n(understood as: {answer.standalone_question})", file=out)


def _stream_to_terminal(stream, show: bool):
    """Show pieces as they come (dimmed, on stderr when a terminal), return the final Answer."""
    answer, live = None, show and sys.stderr.isatty()
    from rag.answer import Answer

    for item in stream:
        if isinstance(item, str):
            if live:
                sys.stderr.write(f"\x1b[2m{item}\x1b[0m")
                sys.stderr.flush()
        elif isinstance(item, Answer):
            answer = item
    if live:
        sys.stderr.write("\r\x1b[2K\n")
    return answer


def cmd_ask(args) -> int:
    from serving.cli import load_app

    with load_app(args) as app:
        answer = _stream_to_terminal(app.ask_stream(args.question, k=args.k), show=not (args.json or args.no_stream))
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2))
    else:
        _print_answer(answer)
    return 0


def cmd_chat(args) -> int:
    from rag.errors import RagError
    from serving.cli import load_app

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
                answer = _stream_to_terminal(app.chat_stream([*messages, {"role": "user", "content": question}], k=args.k), True)
            except RagError as e:
                print(f"error: {e}")
                continue
            _print_answer(answer)
            messages += [{"role": "user", "content": question},
                         {"role": "assistant", "content": answer.text, "papers": [c.paper_id for c in answer.citations]}]
    return 0
