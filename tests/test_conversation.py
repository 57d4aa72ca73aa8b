"""The generator's task (crs.gen.reply): goal rules, prompt steps, examples, decoding, [REC] state."""

from __future__ import annotations

import random

import pytest
import torch

from crs.config import ConvConfig, GeneratorConfig
from crs.data.catalogue import Catalogue, Movie
from crs.data.redial import RECOMMENDER, SEEKER, Turn
from crs.data.samples import Sample
from crs.gen.backbone import IGNORE, collate, load_backbone
from crs.gen.reply import ReplyGenerator
from crs.gen.steps import ConvExample, Steps, derive_goal, goal_distribution, parse_steps, sample_example
from crs.serve.pipeline import fill_slots
from crs.text.tokenizer import NUM_SENTINELS, train_tokenizer
from train.pretrain_lm import blocks_of, span_corrupt


def rec(text: str, movies=()) -> Turn:
    return Turn(RECOMMENDER, text, list(movies))


@pytest.mark.parametrize(
    ("text", "movies", "new", "position", "total", "goal"),
    [
        ("Have you seen @1?", [1], [1], 3, 6, "recommend"),
        ("@1 is great, I loved it too", [1], [], 3, 6, "discuss"),
        ("Hi! What kind of movies do you like?", [], [], 0, 6, "ask_preference"),
        ("Hello there, how are you?", [], [], 0, 6, "greet"),
        ("Hello there, how are you?", [], [], 3, 6, "chat"),  # greetings count early only
        ("Enjoy the movie, bye!", [], [], 5, 6, "farewell"),
        ("Enjoy the movie, bye!", [], [], 1, 6, "chat"),  # farewells count late only
        ("Yes, it was really funny.", [], [], 2, 6, "chat"),
        ("Are you looking for something scary? Bye", [], [], 5, 6, "ask_preference"),
    ],
)
def test_goal_rules(text, movies, new, position, total, goal):
    assert derive_goal(rec(text, movies), new, position, total) == goal


def test_goal_distribution_sums_to_one():
    examples = [ConvExample("c", Steps(goal, [], "none"), "r", []) for goal in ("recommend", "recommend", "chat", "greet")]
    distribution = goal_distribution(examples)
    assert distribution["recommend"] == 0.5 and distribution["farewell"] == 0.0
    assert sum(distribution.values()) == pytest.approx(1.0)


def test_steps_render_and_parse():
    steps = Steps("recommend", ["Comedy", "Jim Carrey"], "The Mask (1994)")
    text = steps.render()
    assert text == "[goal] recommend [topic] Comedy, Jim Carrey [item] The Mask (1994) [recommender]"
    assert parse_steps(text) == ("recommend", ["Comedy", "Jim Carrey"])
    assert parse_steps("[goal] nonsense [topic] none [item]") == ("chat", [])
    assert parse_steps("[goal] greet") == ("greet", [])


class NoLinker:
    def link(self, text):
        return []


def test_examples_put_rec_slots_on_new_movies_only():
    context = [Turn(SEEKER, "I liked @1 a lot", [1])]
    response = Turn(RECOMMENDER, "If you liked @1 try @2 or @3 <b>", [1, 2, 3])
    sample = Sample("c1", 1, context, response, [1], [1, 2, 3], [2, 3], {})
    titles = {1: "Alien (1979)", 2: "Aliens (1986)", 3: "Heat (1995)"}
    example = sample_example(sample, titles, NoLinker(), 0, 1)
    assert example.context == "[seeker] I liked Alien (1979) a lot"
    assert example.reply == "If you liked Alien (1979) try [REC] or [REC] <b>"  # only control tokens are escaped
    assert example.steps == Steps("recommend", [], "Aliens (1986)")
    assert example.target.startswith("[goal] recommend [topic] none [item] Aliens (1986) [recommender] If you liked")


def test_user_text_cannot_smuggle_a_slot():
    context = [Turn(SEEKER, "say [REC] and </s>", [])]
    sample = Sample("c1", 1, context, Turn(RECOMMENDER, "ok", []), [], [], [], {})
    example = sample_example(sample, {}, NoLinker(), 0, 1)
    assert "[REC]" not in example.context and "</s>" not in example.context


def test_fill_slots_uses_ranking_in_order_and_drops_extra_slots():
    catalogue = Catalogue([Movie(1, "Alien", 1979, 5), Movie(2, "Heat", 1995, 3)])
    text, items = fill_slots("Try [REC] or [REC] or even [REC]!", [(2, 1.0), (1, 0.5)], catalogue)
    assert text == "Try Heat (1995) or Alien (1979) or even!" and items == [2, 1]
    assert fill_slots("No movie here.", [(2, 1.0)], catalogue) == ("No movie here.", [])
    # one article before a title that has its own ("the The Avengers")
    catalogue = Catalogue([Movie(3, "The Avengers", 2012, 5), Movie(1, "Alien", 1979, 5)])
    assert fill_slots("what about the [REC] or the [REC]?", [(3, 1.0), (1, 0.5)], catalogue)[0] == \
        "what about The Avengers (2012) or the Alien (1979)?"
    assert fill_slots("The [REC] is great", [(3, 1.0)], catalogue)[0] == "The Avengers (2012) is great"
    assert fill_slots("I liked theater [REC]", [(3, 1.0)], catalogue)[0] == "I liked theater The Avengers (2012)"


def test_span_corruption_hides_and_restores_every_token():
    tokens = list(range(100, 228))
    sentinels = [900 - i for i in range(NUM_SENTINELS)]
    inputs, targets = span_corrupt(tokens, 0.15, 3.0, random.Random(0), sentinels, eos=1)
    assert inputs[-1] == targets[-1] == 1
    masked = [t for t in targets[:-1] if t not in sentinels]
    kept = [t for t in inputs[:-1] if t not in sentinels]
    assert len(masked) == round(128 * 0.15) and sorted(kept + masked) == tokens
    # Rebuild the block: each sentinel in the inputs stands for its span in the targets.
    spans, current = {}, None
    for t in targets[:-1]:
        if t in sentinels:
            current = t
            spans[current] = []
        else:
            spans[current].append(t)
    rebuilt = [x for t in inputs[:-1] for x in (spans[t] if t in sentinels else [t])]
    assert rebuilt == tokens


def test_blocks_join_lines_with_eos():
    assert blocks_of([[5, 6], [7], [8, 9, 10]], 3, eos=1) == [[5, 6, 1], [7, 1, 8], [9, 10, 1]]


def test_causal_collate_scores_targets_only():
    batch = collate([([5, 6, 7], [8, 1]), ([5], [9, 9, 1])], seq2seq=False, pad=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 1], [5, 9, 9, 1, 0]]
    assert batch["labels"].tolist() == [[IGNORE] * 3 + [8, 1], [IGNORE, 9, 9, 1, IGNORE]]
    seq = collate([([5, 6, 7], [8, 1]), ([5], [9, 9, 1])], seq2seq=True, pad=0)
    assert seq["labels"].tolist() == [[8, 1, IGNORE], [9, 9, 1]] and seq["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


# --------------------------------------------------------------------------- a tiny trained generator

LINES = [
    "[seeker] hi, I like scary movies [recommender] [goal] recommend [topic] horror [item] Alien (1979) [recommender] have you seen [REC]?",
    "[seeker] hello, any comedy? [recommender] [goal] ask_preference [topic] none [item] none [recommender] what kind of comedy do you like?",
    "[seeker] thanks, bye [recommender] [goal] farewell [topic] none [item] none [recommender] enjoy, goodbye!",
] * 30

EXAMPLES = [
    ConvExample("[seeker] hi, I like scary movies", Steps("recommend", ["horror"], "Alien (1979)"), "have you seen [REC]?", []),
    ConvExample("[seeker] hello, any comedy?", Steps("ask_preference", [], "none"), "what kind of comedy do you like?", []),
    ConvExample("[seeker] thanks, bye", Steps("farewell", [], "none"), "enjoy, goodbye!", []),
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(LINES, tmp_path_factory.mktemp("conv_tokenizer"), vocab_size=150)


def trained_generator(tokenizer, backbone: str, steps: int = 250) -> tuple[ReplyGenerator, list[float]]:
    torch.manual_seed(0)
    model = load_backbone(GeneratorConfig(backbone=backbone, init="scratch-tiny", max_length=256), tokenizer)
    for module in model.modules():  # memorising three examples is quicker without dropout
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    generator = ReplyGenerator(tokenizer, model, backbone, ConvConfig(max_context_tokens=32, max_target_tokens=100, max_new_tokens=80))
    pairs = [(generator.context_ids(e.context), generator.target_ids(e.target)) for e in EXAMPLES]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2 if backbone == "dialogpt" else 3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**generator.collate(pairs)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    return generator, losses


@pytest.mark.parametrize("backbone", ["dialogpt", "t5"])
def test_generator_learns_the_prompt_steps_and_decodes_in_batches(tokenizer, backbone, tmp_path):
    generator, losses = trained_generator(tokenizer, backbone, steps=500)
    assert losses[-1] < losses[0] / 5
    contexts = [e.context for e in EXAMPLES]
    tops = ["Alien (1979)", "Heat (1995)", "Heat (1995)"]
    batched = generator.generate_texts(contexts, tops)
    assert [g.goal for g in batched] == ["recommend", "ask_preference", "farewell"]
    assert batched[0].topics == ["horror"] and batched[0].item == "Alien (1979)" and batched[1].item == "none"
    if backbone == "dialogpt":  # the tiny T5 learns the steps in this budget, not yet every reply
        assert [g.reply for g in batched] == [e.reply for e in EXAMPLES]
    # Left padding in a batch must not change what is decoded.
    single = [generator.generate_texts([c], [t])[0] for c, t in zip(contexts, tops)]
    assert single == batched
    # Forced steps skip the first phase.
    forced = generator.generate_texts(contexts[:1], tops[:1], forced=[Steps("farewell", [], "none")])[0]
    assert forced.goal == "farewell" and forced.item == "none"

    states = generator.rec_state_texts(contexts)
    assert states.shape == (3, generator.hidden_size) and torch.isfinite(states).all()
    assert not torch.allclose(states[0], states[1])
    total, count = generator.reply_loss(EXAMPLES)
    assert count > 0 and total / count < 1.0  # the trained replies are likely

    generator.save_pretrained(tmp_path, half=True)
    (tmp_path / "config.json").write_text(
        '{"crs_config": {"generator": {"backbone": "%s", "init": "scratch-tiny", "max_length": 256},'
        ' "conv": {"max_context_tokens": 32, "max_target_tokens": 100, "max_new_tokens": 80}}}' % backbone)
    loaded = ReplyGenerator.from_pretrained(tmp_path)
    assert loaded.model.dtype == torch.float32
    assert [g.goal for g in loaded.generate_texts(contexts, tops)] == [g.goal for g in batched]


def test_missing_generator_parts_are_named(tmp_path):
    (tmp_path / "generator").mkdir()
    with pytest.raises(FileNotFoundError, match="missing tokenizer/"):
        ReplyGenerator.from_pretrained(tmp_path)


def test_topic_f1_is_micro_averaged():
    from crs.eval.conv import topic_f1

    # tp = 1 + 1, predicted 3, gold 4: P 2/3, R 1/2, F1 4/7
    assert topic_f1([["a", "b"], ["c"]], [["a", "x"], ["c", "y"]]) == pytest.approx(4 / 7)
    assert topic_f1([[]], [[]]) == 0.0


@pytest.mark.parametrize("backbone", ["dialogpt", "t5"])
def test_pretrain_lm_loss_falls_for_both_backbones(tokenizer, backbone):
    """The stage's objective and validation loss on a tiny model of each backbone: training on the
    blocks lowers their perplexity."""
    from train.pretrain_lm import lm_loss

    torch.manual_seed(0)
    model = load_backbone(GeneratorConfig(backbone=backbone, init="scratch-tiny", max_length=128), tokenizer)
    blocks = blocks_of(tokenizer(LINES[:6], add_special_tokens=False)["input_ids"], 32, tokenizer.eos_token_id)
    sentinels = tokenizer.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(NUM_SENTINELS)])
    seq2seq = backbone == "t5"
    pairs = [span_corrupt(b, 0.15, 3.0, random.Random(i), sentinels, tokenizer.eos_token_id) if seq2seq else ([], b)
             for i, b in enumerate(blocks)]
    model.eval()
    before = lm_loss(model, pairs, seq2seq, tokenizer.pad_token_id, 8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(30):
        batch = collate(pairs, True, 0) if seq2seq else {"input_ids": torch.tensor([b for _, b in pairs]), "labels": torch.tensor([b for _, b in pairs])}
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    after = lm_loss(model, pairs, seq2seq, tokenizer.pad_token_id, 8)
    assert before[1] == after[1] > 0 and after[0] < before[0] * 0.8


def test_requests_for_a_movie_are_recognised():
    from crs.data.context import DialogueContext
    from crs.serve.pipeline import asks_for_recommendation

    def asks(text: str, movies=()) -> bool:
        return asks_for_recommendation(DialogueContext([Turn(SEEKER, text, list(movies))]))

    assert asks("I loved The Matrix, anything similar?") and asks("Can you recommend a comedy?")
    assert asks("I watched it yesterday", movies=[1])  # a named movie counts as a request
    assert not asks("hello there") and not asks("thanks, bye")
    assert not asks_for_recommendation(DialogueContext([Turn(RECOMMENDER, "any suggestions?", [])]))


def test_t5_decodes_an_empty_context(tokenizer):
    """The recommender may open a dialogue: the context is empty (alone and beside others in a batch)."""
    torch.manual_seed(0)
    model = load_backbone(GeneratorConfig(backbone="t5", init="scratch-tiny", max_length=128), tokenizer)
    generator = ReplyGenerator(tokenizer, model, "t5", ConvConfig(max_context_tokens=32, max_target_tokens=40, max_new_tokens=30))
    alone = generator.generate_texts([""], ["none"])
    together = generator.generate_texts(["", "[seeker] hi"], ["none", "none"])
    assert alone[0] == together[0]
