"""The words that shape a question, in one place for every module that reads questions.

``rag.answer.answerability`` (what a question asks for), ``rag.answer.citations`` (does a sentence answer it) and
``rag.answer.evidence`` (which sentences to quote) each match question forms with regular expressions; they
build them from these lists, so a word added here ("might", "remedy") is understood everywhere alike.

* ``AUXILIARIES``: the verbs that open a yes/no question ("Does CLIP ...?") or follow a wh-word ("How
  can ...", "What does ..."); ``AUX`` is them as a regex alternation.
* ``METHOD_NOUNS``: nouns for a way of doing something. "What method / fix / trick ...?" asks for a
  name (``citations.asks_name``), is answered by what a paper proposes (``evidence``), and the noun
  itself says nothing about what is asked (``answerability``: "What method ..." asks for no word an
  abstract must contain). "Recipe" and "scheme" are not among them: "What training recipe ...?" asks
  for the steps, not a name (``answerability`` still treats them as saying nothing).

Example:
    >>> import re
    >>> bool(re.match(rf"(?:{AUX})\\b", "might it work?")), bool(re.match(rf"(?:{AUX})\\b", "mighty"))
    (True, False)
    >>> plural("strategy"), plural("fix"), plural("process"), plural("model")
    ('strategies', 'fixes', 'processes', 'models')
"""

from __future__ import annotations

AUXILIARIES = ("do", "does", "did", "is", "are", "was", "were", "can", "could", "has", "have", "had", "will", "would",
               "should", "might")
AUX = "|".join(AUXILIARIES)

METHOD_NOUNS = ("method", "technique", "approach", "strategy", "framework", "mechanism", "procedure", "pipeline",
                "fix", "solution", "trick", "remedy")


def plural(noun: str) -> str:
    """The regular English plural of a noun (enough for the lists here)."""
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "sh", "ch")):
        return noun + "es"
    return noun + "s"


def with_plurals(nouns) -> tuple[str, ...]:
    """Each noun and its plural, in order.

    >>> with_plurals(["fix", "study"])
    ('fix', 'fixes', 'study', 'studies')
    """
    return tuple(w for n in nouns for w in (n, plural(n)))


def alternation(nouns) -> str:
    """A regex alternation of the nouns and their plurals, longest first ("fixes" before "fix")."""
    return "|".join(sorted(with_plurals(nouns), key=len, reverse=True))
