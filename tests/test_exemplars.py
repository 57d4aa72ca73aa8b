"""Retrieved exemplars (crs.gen.exemplars): TF-IDF retrieval, exclusion of the own dialogue,
persistence, and the [exemplar] segment of the generator's prompt."""

from __future__ import annotations

import pytest

from crs.data.redial import Turn
from crs.gen.exemplars import ExemplarIndex, context_key
from crs.text.tokenizer import train_tokenizer

KEYS = [
    "I love scary movies with ghosts",
    "any good romantic comedy for a date night",
    "I want a space adventure with aliens",
    "ghosts and haunted houses scare me, I love them",
]
REPLIES = ["Have you seen [REC]? It is terrifying", "[REC] is a sweet one", "Try [REC], great aliens", "[REC] has a haunted house"]
DIALOGUES = ["d1", "d2", "d3", "d4"]


@pytest.fixture(scope="module")
def synthetic_tokenizer(tmp_path_factory):
    lines = ["[seeker] I love ghosts and aliens [recommender] have you seen [REC]? It is terrifying [exemplar] bye"] * 40
    return train_tokenizer(lines, tmp_path_factory.mktemp("tokenizer"), vocab_size=60)


def index() -> ExemplarIndex:
    return ExemplarIndex.build(KEYS, REPLIES, DIALOGUES, min_df=1)


def test_the_most_similar_context_gives_its_reply():
    found = index().query(["something with aliens in space please", "a comedy for my date"], k=1)
    assert found == [["Try [REC], great aliens"], ["[REC] is a sweet one"]]


def test_k_replies_most_similar_first_and_the_own_dialogue_excluded():
    idx = index()
    assert idx.query(["I love ghosts"], k=2)[0] == ["Have you seen [REC]? It is terrifying", "[REC] has a haunted house"]
    # The same key from dialogue d1 (its own turn) takes the next best one instead.
    assert idx.query([KEYS[0]], k=1, exclude=["d1"]) == [["[REC] has a haunted house"]]


def test_a_context_sharing_nothing_gets_no_exemplar():
    assert index().query(["", "zxqv"], k=1) == [[], []]
    assert index().query(["ghosts"], k=0) == [[]]


def test_saved_index_answers_the_same(tmp_path):
    idx = index()
    idx.save(tmp_path / "exemplars")
    assert ExemplarIndex.present(tmp_path / "exemplars")
    loaded = ExemplarIndex.load(tmp_path / "exemplars")
    queries = ["aliens", "haunted ghosts", "romantic date"]
    assert loaded.query(queries, k=2) == idx.query(queries, k=2) and len(loaded) == 4


def test_key_is_the_text_of_the_last_two_turns_with_titles():
    turns = [Turn("seeker", "hi", []), Turn("recommender", "hello, what do you like?", []), Turn("seeker", "I liked @7", [7])]
    assert context_key(turns, {7: "Alien (1979)"}) == "hello, what do you like? I liked Alien (1979)"


def test_generator_prompt_has_the_exemplar_segment(synthetic_tokenizer):
    """context ids, then [exemplar] and the exemplar's ids, cut to max_exemplar_tokens."""
    from crs.config import ConvConfig, GeneratorConfig
    from crs.gen.backbone import load_backbone
    from crs.gen.reply import ReplyGenerator

    model = load_backbone(GeneratorConfig(init="scratch-tiny", max_length=128), synthetic_tokenizer)
    generator = ReplyGenerator(synthetic_tokenizer, model, "dialogpt", ConvConfig(max_exemplar_tokens=3))
    assert generator.exemplar_id is not None and not generator.uses_exemplars  # no index yet
    plain = generator.context_ids("[seeker] I love ghosts")
    with_one = generator.context_ids("[seeker] I love ghosts", ["Have you seen [REC]? It is terrifying"])
    assert with_one[: len(plain)] == plain and with_one[len(plain)] == generator.exemplar_id
    assert len(with_one) == len(plain) + 1 + 3
    generator.exemplar_index = index()
    assert generator.uses_exemplars and generator.retrieve(["aliens in space"]) == [["Try [REC], great aliens"]]
