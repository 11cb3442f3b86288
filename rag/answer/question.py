"""The question, parsed once: what it names, what it asks for, and its shape.

Every later step of the answer stage (evidence, answerability, citations, lists, the fallback) reads the
question through one ``Question``, built after intent and the follow-up rewrite; none of them runs a regex of
its own on the question's text. Each question shape is one named pattern below, with a worked example; the word
lists they are built from are in ``rag.answer.vocabulary``. A derived property is computed on first use and
kept (the object is frozen: the text never changes under it).

Example:
    >>> q = Question("How many GPU hours and what learning rate were used to train LlamaFusion?")
    >>> q.names, q.asked_phrases, q.only_quantity
    (['GPU', 'LlamaFusion'], [['gpu', 'hours'], ['learning', 'rate']], False)
    >>> [p.text for p in Question("How was RLHF adapted, and what extra information is given to the reward model?").parts]
    ['How was RLHF adapted', 'what extra information is given to the reward model']
    >>> Question("Which papers build on CLAP, and what tasks do they apply it to?", kind="list").list_parts
    ('build on CLAP', 'what tasks do they apply it to')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from rag.answer.vocabulary import (AUX, COMMON_ACRONYMS, COMMON_CAPITALISED, GENERIC_NOUNS, METHOD_NOUNS, NAMED_THINGS,
                                   alternation)
from rag.text import STOPWORDS, content_words, flat, names, number_mentions, numbers

# -- question shapes ------------------------------------------------------------------------------------------
# "how many / how large / what accuracy ...": the answer is a quantity (sentences with numbers score higher)
ASKS_QUANTITY = re.compile(r"\b(?:how (?:many|much|large|big|long|fast|often|well|accurate)|what (?:size|number|"
                           r"percentage|fraction|share|proportion|accuracy|score|rate)|number of|size of)\b", re.I)
# "How can ...?", "What method ...?": the answer is what a paper proposes
ASKS_HOW = re.compile(rf"^\s*(?:how\s+(?:{AUX})\b|what\s+(?:[\w-]+\s+){{0,2}}?(?:{alternation(METHOD_NOUNS)})\b)", re.I)
# where to get something, or on what terms: link sentences ("Code is at https://...") answer it
ASKS_WHERE = re.compile(r"\b(?:code|github|repo|repository|url|link|website|homepage|project page|download|"
                        r"open[- ]source[ds]?|available|availability|release[ds]?|weights|checkpoints?|licen[cs]e[ds]?|"
                        r"distribut\w*|commercial\w*|access\w*)\b", re.I)
# where a question that asks several things splits into its parts
PART_SPLIT = re.compile(rf"(?:,?\s+and\s+|;\s*|\?\s*|,\s+)(?=(?:what|how|which|why|where|when|who|whose|{AUX}|in|on|by|to)\b)",
                        re.I)
# "What X ...", "Which X ...", "How many X ...": the thing asked for, up to the verb
NOT_AUX = rf"(?!(?:{AUX})\b)"  # not followed by an auxiliary ("what does ..." asks for no noun)
ASKED = re.compile(r"\b(what|which|how many|how much|under what|under which)\s+" + NOT_AUX + r"((?:[\w-]+\s+){0,2}?[\w-]+?)"
                   rf"(?=\s+(?:{AUX}|and|or|of|for|in|on|to|"
                   r"with|from|at|by|that|which|works?|gives?|yields?|performs?|helps?|\w+ed)\b|[?,])", re.I)
# "What is X's Y ...": the thing asked for is Y
ASKED_OF = re.compile(r"\b(what) (?:is|are|was|were) (?:the )?[\w-]+'s\s+((?:[\w-]+\s+){0,2}?[\w-]+?)"
                      r"(?=\s+(?:per|of|for|in|on|at|with|compared|when|during|and|or|to|from|by)\b|[?,])", re.I)
# a count or amount asked without naming what is counted: any number in the quotes can answer it
BARE_QUANTITY = re.compile(r"\bhow (?:much|big|large|long|fast|often)\s+(?:(?:more|less|faster|better|larger|smaller)\s+)?"
                           rf"(?:{AUX})\b|"
                           r"\bby (?:how much|what (?:fraction|factor|percentage|margin))\b|\bwhat (?:fraction|percentage|share|proportion)\b",
                           re.I)
# "Which ...?", "Is there a ...?", "What is it called?": the answer is a name
ASKS_NAME = re.compile(
    r"^\W*(?:which|name)\b|^\W*(?:is|are) there (?:a|an|any)\b|\bwhat(?:'s| is| was| are)?\s+(?:it|this|that|they|the \w+)?\s*"
    r"called\b|\b(?:what is|what's) (?:its|their|the)\s+(?:[\w-]+\s+){0,4}?called\b|\bname of\b|"
    rf"\bwhat\s+(?:[\w-]+\s+){{0,3}}?(?:{alternation(NAMED_THINGS)})\b",
    re.I)
# "Does CLIP ...?": a yes/no question (its restatement is an answer)
YES_NO = re.compile(rf"^\W*(?:{AUX})\b", re.I)
# capitalised words that do not start the question ("... with the Atari agent"): possible names
CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")
# a hyphenated modifier ("ColBERT-style") names its head ("ColBERT")
MODIFIER = re.compile(r"-(style|like|based|driven|written|generated|inspired|aware|free|guided|level|scale|sized|"
                      r"specific|centric|only|powered|enabled|friendly|type|esque)$", re.I)
# "Which (of the) [up to 2 words] papers", "List (all the) [up to 6 words] papers": a list question; the words between
# are the criterion's modifiers ("List the survey or literature-review papers")
LIST_HEAD = (r"^\s*(?:(?:which|what|are there(?: any)?)\b(?:\s+(?:all|the|any|of|some|other))*(?P<few>(?:\s+[\w-]+){0,2}?)"
             r"|(?:list|name|find|show(?: me)?|give(?: me)?|enumerate)\b(?:\s+(?:all|the|any|of|some|other))*(?P<more>(?:\s+[\w-]+){0,6}?))"
             r"\s+(?:papers|studies|articles|publications)\b")
# the list head with "in the collection that ...": what precedes the criterion
LIST_PREFIX = re.compile(LIST_HEAD + r"(\s+(in|from|of) (the|this|your) (collection|index|corpus|set))?"
                         r"(\s+(that|which|whose|who|where|about|on)\b)?\s*", re.I)
# "..., and what/how many/where ...": what a list question asks about each listed paper
LIST_DETAIL = re.compile(r"(?:,\s*|\s+)and\s+(?=(?:what|which|how|where|when|why|who)\b)", re.I)
# "it", "its", "this model": a follow-up refers to what the conversation was about
PRONOUN = re.compile(
    r"\b(?:(its)|(it|they|them)|((?:this|that) (?:model|dataset|benchmark|method|paper|work|approach|framework|system|study)))\b",
    re.I)

NAME, NUMBER, WORD = "name", "number", "word"  # the kinds of a question's terms


def question_parts(text: str) -> list[str]:
    """The sub-questions of a question that asks several things (the whole question if one).

    >>> question_parts("How many tasks does MIBench have, and what models are tested?")
    ['How many tasks does MIBench have', 'what models are tested']
    """
    parts = [p.strip(" ?,.") for p in PART_SPLIT.split(text) if p and len(p.split()) >= 3]
    return parts if len(parts) > 1 else [text.strip()]


def general_acronym(term: str) -> bool:
    """A general-vocabulary acronym ("DNA", "PDFs"), which no paper defines?

    >>> general_acronym("PDFs"), general_acronym("MMMU")
    (True, False)
    """
    t = term.lower()
    return t in COMMON_ACRONYMS or (t.endswith("s") and t[:-1] in COMMON_ACRONYMS)


@dataclass(frozen=True)
class Question:
    """One question (or a list's criterion, or a part of a question) and everything the answer stage asks of it.

    ``kind``: "question" or "list" (``rag.answer.intent``); ``language``: the language the user wrote in (the text
    is English: a translation when ``language`` is not "en").
    """

    text: str
    kind: str = "question"
    language: str = "en"

    @property
    def translated(self) -> bool:
        """A machine translation, where words of the original language can remain ("Bild")."""
        return self.language != "en"

    # -- words ---------------------------------------------------------------------------------------------
    @cached_property
    def names(self) -> list[str]:
        """Tokens that look like names (``rag.text.names``): acronyms, CamelCase, letters with digits."""
        return names(self.text)

    @cached_property
    def flat_names(self) -> frozenset[str]:
        """The names as matched against titles (``rag.text.flat``)."""
        return frozenset(flat(n) for n in self.names)

    @cached_property
    def content_words(self) -> list[str]:
        return content_words(self.text)

    @cached_property
    def number_mentions(self) -> list[tuple[str, str]]:
        return number_mentions(self.text)

    @cached_property
    def term_kinds(self) -> dict[str, str]:
        """Each content word and number of the question with its kind: a name's word, a number, another word.

        >>> Question("How many samples does CMM-Math have?").term_kinds
        {'many': 'word', 'samples': 'word', 'cmm-math': 'name', 'cmm': 'name', 'math': 'name'}
        """
        name_words = {w.lower() for n in self.names for w in [n, *n.split("-")]}
        kinds = {w: NAME if w in name_words else NUMBER if w[0].isdigit() else WORD for w in self.content_words}
        for n in numbers(self.text):
            kinds.setdefault(n, NUMBER)
        return kinds

    def distinctive_terms(self) -> list[str]:
        """Names, acronyms and capitalised words not starting a sentence (not for a translation), in order.

        >>> Question("How fast is FlashAttention-3 on H100 GPUs compared with the Atari agent?").distinctive_terms()
        ['FlashAttention-3', 'H100', 'GPUs', 'Atari']
        """
        out = dict.fromkeys(MODIFIER.sub("", n) for n in self.names)
        for m in CAPITALISED.finditer("" if self.translated else self.text):
            w = m.group(0)
            if w.lower() not in STOPWORDS and w.lower() not in COMMON_CAPITALISED and not any(w in n for n in out):
                out.setdefault(w, None)
        return list(out)

    # -- shape -----------------------------------------------------------------------------------------------
    @cached_property
    def parts(self) -> tuple[Question, ...]:
        """The sub-questions, when it asks several things (else none)."""
        parts = question_parts(self.text)
        return tuple(Question(p) for p in parts) if len(parts) > 1 else ()

    @cached_property
    def asks_quantity(self) -> bool:
        return bool(ASKS_QUANTITY.search(self.text))

    @cached_property
    def asks_how(self) -> bool:
        return bool(ASKS_HOW.search(self.text))

    @cached_property
    def asks_where(self) -> bool:
        return bool(ASKS_WHERE.search(self.text))

    @cached_property
    def asks_name(self) -> bool:
        """Is the answer a name ("Which method ...?", "What is it called?")?

        >>> [Question(t).asks_name for t in ("Which work predicts gaze?", "What beta value works best?", "What LLM is it built on?")]
        [True, False, True]
        >>> Question("Is there a benchmark of figures in papers?").asks_name, Question("What is its graph-only variant called?").asks_name
        (True, True)
        """
        return bool(ASKS_NAME.search(self.text))

    @cached_property
    def yes_no(self) -> bool:
        return bool(YES_NO.search(self.text))

    @cached_property
    def bare_quantity(self) -> bool:
        return bool(BARE_QUANTITY.search(self.text))

    @cached_property
    def asked(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(kind, content words) of each thing asked for, in question order; kind is "count" ("how many X",
        "how much X"), "what" or "which" ("under what X" is a "what").

        >>> Question("What is TableGPT2's context length and which models does it beat?").asked
        (('what', ('context', 'length')), ('which', ('models',)))
        """
        out = []
        for m in sorted([*ASKED.finditer(self.text), *ASKED_OF.finditer(self.text)], key=lambda m: m.start()):
            words = tuple(w for w in content_words(m.group(2)) if "-" not in w and w not in GENERIC_NOUNS and not w[0].isdigit())
            if words:
                wh = m.group(1).lower()
                out.append(("count" if wh.startswith("how") else wh.split()[-1], words))
        return tuple(out)

    @property
    def asked_phrases(self) -> list[list[str]]:
        """The things asked for, each as its content words; the last one is the head noun."""
        return [list(words) for _, words in self.asked]

    @cached_property
    def asked_words(self) -> list[str]:
        """The content words of what is asked for ("What learning rate ..." -> learning, rate).

        >>> Question("What learning rate and how many GPUs did the original BERT paper use?").asked_words
        ['learning', 'rate', 'gpus']
        """
        return list(dict.fromkeys(w for _, words in self.asked for w in words))

    @cached_property
    def only_quantity(self) -> bool:
        """Does it ask for a count or an amount and nothing else? Its answer needs a number.

        >>> Question("How many preference pairs are in UnifiedReward's dataset?").only_quantity
        True
        >>> Question("How many tasks does MIBench have, and what models are tested?").only_quantity
        False
        >>> Question("What licence does TableGPT2 use?").only_quantity
        False
        """
        kinds = [kind for kind, _ in self.asked]
        asks = all(kind == "count" for kind in kinds) if kinds else self.bare_quantity
        return asks and len(question_parts(self.text)) == 1

    # -- list questions ----------------------------------------------------------------------------------
    @cached_property
    def list_parts(self) -> tuple[str, str]:
        """(the condition a paper must meet, what the question asks about each paper or ""), for a list question.

        >>> Question("Which papers in the collection use a Mixture-of-Experts (MoE) architecture?").list_parts
        ('use a Mixture-of-Experts (MoE) architecture', '')
        >>> Question("List the survey or literature-review papers in the collection.").list_parts[0]
        'survey or literature-review'
        >>> Question("Which papers whose main task is emotion recognition?").list_parts[0]
        'main task is emotion recognition'
        """
        head = LIST_PREFIX.match(self.text)
        m = LIST_DETAIL.search(self.text, head.end() if head else 0)
        question, detail = (self.text, "") if not m else (self.text[:m.start()].rstrip(" ,"),
                                                          self.text[m.end():].strip().rstrip("?.!").strip())
        m = LIST_PREFIX.match(question)
        if not m:
            return question.strip(), detail
        rest = question[m.end():].strip().rstrip("?.!").strip()
        modifiers = (m.group("few") or m.group("more") or "").strip()
        return rest or modifiers or question.strip(), detail

    @property
    def criterion(self) -> Question:
        """The list's criterion as a question of its own (what each paper is scored against)."""
        return Question(self.list_parts[0])

    # -- the question and papers -------------------------------------------------------------------------
    def calls_by_name(self, title: str) -> bool:
        """Does the question call the paper by its short name (the title before its colon)?

        >>> Question("How do MIO and LLaVA-KD train?").calls_by_name("LLaVA-KD: A Framework of Distilling MLLMs")
        True
        >>> Question("How do MLLMs train?").calls_by_name("Distilling MLLMs")
        False
        """
        return ":" in title and flat(title.split(":")[0]) in self.flat_names

    def subjects(self, papers: list) -> list[str]:
        """Names in the question that name one of the papers (in its title): an answer must then be cited to a
        paper that mentions one of them. "GPUs" or "LLMs" name no paper, so they restrict nothing.

        >>> from types import SimpleNamespace as P
        >>> Question("How many GPUs trained FILIP on FILIP300M?").subjects([P(title="FILIP: Fine-grained", abstract="FILIP300M, 64 GPUs.")])
        ['FILIP', 'FILIP300M']
        """
        titles = flat(" ".join(p.title for p in papers))
        named = [n for n in self.names if flat(n) and flat(n) in titles]
        text = flat(" ".join(f"{p.title} {p.abstract}" for p in papers))
        # a paper's own short name also covers its variants mentioned in the question ("FILIP300M")
        return [n for n in self.names if flat(n) and flat(n) in text and any(flat(m) in flat(n) for m in named)]

    def mentioned_by(self, paper) -> bool:
        """A paper can answer by quotes alone only if it mentions at least one name the question uses (if any).

        >>> from types import SimpleNamespace as P
        >>> Question("What patch size does Qwen2-VL use?").mentioned_by(P(title="ViT survey", abstract="ViTs use patches."))
        False
        """
        qnames = [flat(n) for n in self.names if flat(n)]
        return not qnames or any(n in flat(f"{paper.title} {paper.abstract}") for n in qnames)

    def echoed_by(self, sentence: str) -> bool:
        """Does the sentence only restate a wh-question (all its content words are the question's)?

        >>> q = Question("Which study steers a text generator by altering hidden-state vectors?")
        >>> q.echoed_by("The study steers a text generator by altering hidden-state vectors.")
        True
        >>> q.echoed_by("UTAP steers a text generator by altering hidden-state vectors.")
        False
        >>> Question("Does CLIP use contrastive learning?").echoed_by("CLIP uses contrastive learning.")  # the restatement answers
        False
        """
        if self.yes_no:
            return False
        return set(content_words(sentence)) <= self.content_word_set

    @cached_property
    def content_word_set(self) -> frozenset[str]:
        return frozenset(self.content_words)
