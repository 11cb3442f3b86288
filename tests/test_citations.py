from rag.citations import attribute, lexical_support, split_sentences, strip_markers
from rag.retrieval import Hit

SOURCES = [
    Hit("CMM-Math", 1.0, "CMM-Math contains over 28,000 high-quality samples across 12 grade levels.", "a"),
    Hit("Whisper", 0.9, "Whisper is a speech recognition model trained on 680,000 hours of audio.", "b"),
]


def test_split_and_strip():
    assert split_sentences("One [1]. Two is 2.5 [2]! Three?") == ["One [1].", "Two is 2.5 [2]!", "Three?"]
    assert strip_markers("It has 28,000 samples [1, 2].") == ("It has 28,000 samples.", [1, 2])


def test_invalid_number_dropped_and_remapped():
    text, cites, dropped = attribute("CMM-Math has 28,000 samples [9].", SOURCES, threshold=0.3)
    assert text == "CMM-Math has 28,000 samples [1]."
    assert [c.number for c in cites] == [1] and cites[0].title == "CMM-Math"


def test_wrong_claimed_source_replaced_by_supporting_one():
    text, cites, _ = attribute("Whisper was trained on 680,000 hours of audio [1].", SOURCES, threshold=0.3)
    assert text.endswith("[2].") and [c.title for c in cites] == ["Whisper"]


def test_unsupported_sentence_dropped():
    text, cites, dropped = attribute("Transformers were invented in 1850 by bananas.", SOURCES, threshold=0.3)
    assert text == "" and cites == [] and dropped


def test_hallucinated_number_penalised():
    right = lexical_support("CMM-Math has 28,000 samples", SOURCES[0].text)
    wrong = lexical_support("CMM-Math has 99,999 samples", SOURCES[0].text)
    assert right > wrong


def test_citations_in_order_of_first_use_and_unique():
    text, cites, _ = attribute(
        "Whisper was trained on 680,000 hours of audio. CMM-Math has 28,000 samples. Whisper recognises speech.",
        SOURCES, threshold=0.3,
    )
    assert [c.number for c in cites] == [2, 1]
