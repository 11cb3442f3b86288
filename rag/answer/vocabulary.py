"""The word lists of the answer stage, and the shapes of the paper and answer sentences it reads.

The question patterns of ``rag.answer.question`` are built from these lists, so a word added here ("might",
"remedy") is understood everywhere alike; ``rag.answer.evidence``, ``rag.answer.citations`` and
``rag.answer.lists`` take their word lists and sentence shapes from here too.

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
    >>> bool(BOILERPLATE.search("Code is available at https://x.io.")), bool(CONTRIBUTION.search("We propose VC-CoT."))
    (True, True)
    >>> bool(META.search("The paper does not mention GPUs.")), "gpus" in RESEARCH_WORDS
    (True, True)
"""

from __future__ import annotations

import re

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


# nouns that say what kind of thing a name is: "What X ...?" asks for a name when X is one of them
NAMED_THINGS = METHOD_NOUNS + ("paper", "study", "model", "benchmark", "dataset", "system", "algorithm", "architecture",
                               "metric", "encoder", "llm", "tool", "loss", "module", "network", "language model", "backbone")
# container nouns: "What method / kind of result ..." asks for no word an abstract must contain
GENERIC_NOUNS = frozenset(with_plurals(METHOD_NOUNS + ("model", "paper", "work", "study", "system", "way", "kind", "type",
                                                       "one", "thing", "part", "result", "value", "category", "aspect",
                                                       "factor", "component", "element", "process", "recipe", "scheme")))
# nouns of an amount: "how many X" with X one of these counts nothing in particular
QUANTITY_NOUNS = frozenset("number numbers percentage fraction share proportion amount ratio size count".split())
# capitalised words that are not names of things a paper could define
COMMON_CAPITALISED = frozenset(
    "english chinese japanese korean french german spanish italian portuguese russian arabic hindi indian american "
    "european african asian january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split())
# acronyms of general vocabulary, not names a paper defines: absent from the corpus, they say nothing about
# whether it answers ("... studying dementia with DNA data", "... figures in academic CS manuscripts")
COMMON_ACRONYMS = frozenset(
    "dna rna html xml json css pdf url http https api cpu gpu tpu ram cs ai ml nlp ui ux sql usb os pc faq phd "
    "usa uk eu un fp16 fp32 bf16 int8 int4".split())
# the vocabulary of ML research: a request using none of it (and no name) may be off-topic
RESEARCH_WORDS = frozenset(
    "model models modeling modelling dataset datasets benchmark benchmarks train training trained learning learn "
    "neural network networks transformer transformers attention token tokens embedding embeddings encoder decoder "
    "language vision visual image images video videos audio speech multimodal llm llms mllm mllms vlm vlms lmm lmms "
    "retrieval generation generative diffusion reinforcement supervised unsupervised fine-tuning fine-tune finetune "
    "pretraining pre-training pretrained pre-trained accuracy evaluation evaluate evaluates metric metrics loss "
    "architecture parameters inference prompt prompting reasoning agent agents classification segmentation "
    "detection recognition captioning caption captions question answering qa paper papers method methods "
    "algorithm algorithms approach framework state-of-the-art sota baseline baselines gpt clip bert vit cnn rnn "
    "lstm gan vae nlp representation representations contrastive alignment hallucination instruction "
    "instruction-tuning corpus annotation annotations label labels labeled scaling compute gpu gpus "
    # a newcomer's words for the field's systems: "can a picture chatbot read my screenshots?" asks about research
    "ai chatbot chatbots bot bots robot robots computer computers".split()
)

# -- the shapes of paper and answer sentences ---------------------------------------------------------------
# "Code is available at https://...": it names the paper's project, so it matches look-ups by name, yet it answers
# nothing but "where is the code?"
BOILERPLATE = re.compile(r"https?://|www\.|github\.com|\b(?:publicly |freely |openly )?available (?:at|on|online|here|from)\b|"
                         r"\bwill be (?:made )?(?:publicly |freely )?(?:available|released|open[- ]sourced)\b", re.I)
# "we propose / introduce ...": what a paper does (the answer to "how can ...?"), not the problem it states
CONTRIBUTION = re.compile(r"\b(?:we|this (?:paper|work|study)|our (?:method|approach|framework|model))\s+(?:\w+\s+){0,2}?"
                          r"(?:propose|introduce|present|develop|design|devise|build|construct|leverage|use|employ)", re.I)
# a sentence that starts by referring back ("It ...", "However ..."): quoted with the sentence before it
ANAPHOR = ("it ", "its ", "this ", "these ", "they ", "their ", "such ", "the model", "the dataset", "the benchmark",
           "the method", "the framework", "our ", "both ", "however", "moreover", "furthermore", "additionally")
# "The paper does not mention ...": a sentence about the quotes, not a claim
META = re.compile(
    r"\b(?:does not|doesn't|do not|don't|did not|didn't|is not|isn't|are not|aren't|cannot|can't|no)\b[^.]{0,40}?"
    r"\b(?:provide|mention|state|specify|say|include|contain|discuss|report|give|determine|information|details?|answer)"
    r"|\bnot (?:possible|mentioned|stated|specified|provided|clear)\b|\bunclear\b", re.I)
