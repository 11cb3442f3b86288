"""One vocabulary of question words (rag.answer.vocabulary), understood alike by every module that reads questions."""

import pytest

from rag.answer.question import Question, question_parts
from rag.answer.vocabulary import AUXILIARIES, METHOD_NOUNS, with_plurals


@pytest.mark.parametrize("aux", AUXILIARIES)
def test_every_auxiliary_opens_a_yes_no_question_and_a_how_question(aux):
    yes_no = f"{aux.capitalize()} CLIP use contrastive learning?"
    assert not Question(yes_no).echoed_by("CLIP uses contrastive learning.")  # the restatement answers a yes/no question
    assert Question(f"How {aux} the reward model be trained?").asks_how
    assert Question(f"What {aux} the authors release?").asked_words == []  # the auxiliary is not what is asked
    assert question_parts(f"What does X add, and {aux} it run on a phone?") == ["What does X add",
                                                                                     f"{aux} it run on a phone"]


@pytest.mark.parametrize("noun", METHOD_NOUNS)
def test_every_method_noun_asks_for_a_name_and_a_way_and_names_nothing(noun):
    for form in with_plurals([noun]):
        question = f"What simple {form} keeps the model from forgetting?"
        assert Question(question).asks_name, question
        assert Question(question).asks_how, question
        assert noun not in Question(question).asked_words


def test_a_recipe_asks_for_steps_not_a_name():
    question = "What multi-stage training recipes do MIO and LLaVA-KD follow?"
    assert not Question(question).asks_name
    assert Question(question).asked_words == ["multi", "stage", "training"]  # "recipes" names nothing to look for
