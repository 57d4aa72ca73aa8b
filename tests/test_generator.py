"""The generator's tokenizer (crs.text.tokenizer), its backbones (crs.gen.backbone) and their config keys."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from crs.config import GENERATOR_SCRATCH_INITS, ConfigError, DataConfig, GeneratorConfig, load_config
from crs.data import Catalogue, Movie, load_split, load_splits, render_mentions
from crs.data.redial import parse_dialogue
from crs.gen.backbone import SCRATCH_SIZES, load_backbone, save_model
from crs.text.render import render_turns
from crs.text.tokenizer import (
    MOVIE_TOKEN,
    NUM_SENTINELS,
    REC_TOKEN,
    SPECIAL_TOKENS,
    build_corpus,
    escape_control_tokens,
    load_tokenizer,
    train_tokenizer,
)
from kg.graph import KnowledgeGraph
from train.__main__ import Stage
from train.common import StageContext

# A few made-up lines: enough for a tokenizer that the backbone tests can run on without the data.
SYNTHETIC_LINES = [
    f"[seeker] hi, can you recommend a movie like {MOVIE_TOKEN}? [recommender] sure, have you seen {MOVIE_TOKEN}?",
    "[seeker] I love scary horror films and funny comedies. [recommender] [REC] try this one, it is great!",
    "[goal] recommend [topic] horror [item] a classic (it's old). Thanks, bye! Goodbye. 0123456789",
] * 20


@pytest.fixture(scope="module")
def synthetic_tokenizer(tmp_path_factory):
    return train_tokenizer(SYNTHETIC_LINES, tmp_path_factory.mktemp("synthetic_tokenizer"), vocab_size=120)


@pytest.fixture(scope="module")
def train_dialogues(data_dir):
    return load_splits(DataConfig(data_dir=str(data_dir)), with_test=False).train[:40]


@pytest.fixture(scope="module")
def train_utterances(train_dialogues, catalogue):
    titles = {movie.movie_id: movie.display_name for movie in catalogue.movies}
    return [render_mentions(turn.text, titles) for d in train_dialogues for turn in d.turns]


@pytest.fixture(scope="module")
def real_tokenizer(train_utterances, tmp_path_factory):
    assert len(train_utterances) > 300
    return train_tokenizer(train_utterances, tmp_path_factory.mktemp("real_tokenizer"), vocab_size=300)


def control_ids(tokenizer) -> set[int]:
    """Ids user text must never produce: the special tokens, pad, eos and the sentinels."""
    sentinels = tokenizer.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(NUM_SENTINELS)])
    specials = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    return {*specials, tokenizer.pad_token_id, tokenizer.eos_token_id, *sentinels}


def folded(text: str) -> str:
    return " ".join(text.split())


# --- tokenizer -------------------------------------------------------------------------------


@pytest.mark.data
def test_tokenizer_has_t5_layout_and_atomic_special_tokens(real_tokenizer, tmp_path):
    tokenizer = real_tokenizer
    ids = (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id, tokenizer.bos_token_id)
    assert ids == (0, 1, 2, None)
    assert len(tokenizer) == 300 + NUM_SENTINELS
    ids = [tokenizer(token, add_special_tokens=False)["input_ids"] for token in SPECIAL_TOKENS]
    assert all(len(one) == 1 for one in ids) and len({one[0] for one in ids}) == len(SPECIAL_TOKENS)
    # T5's sentinels count down from the end.
    assert tokenizer.convert_tokens_to_ids("<extra_id_0>") == len(tokenizer) - 1
    assert tokenizer("hello")["input_ids"][-1] == tokenizer.eos_token_id
    tokenizer.save_pretrained(str(tmp_path))
    again = load_tokenizer(tmp_path)
    text = f"[seeker] have you seen {MOVIE_TOKEN}? {REC_TOKEN} <extra_id_3>"
    assert again(text)["input_ids"] == tokenizer(text)["input_ids"]


@pytest.mark.data
def test_round_trip_on_real_utterances(real_tokenizer, train_utterances, train_dialogues):
    for text in train_utterances:
        decoded = real_tokenizer.decode(real_tokenizer(text)["input_ids"], skip_special_tokens=True)
        assert folded(decoded) == folded(text)
    # Whole dialogues with speaker tokens and movie slots: the spaces around them survive exactly.
    for dialogue in train_dialogues[:10]:
        text = render_turns(dialogue.turns, {movie: MOVIE_TOKEN for movie in dialogue.movie_mentions}, "corpus")
        assert real_tokenizer.decode(real_tokenizer(text)["input_ids"], skip_special_tokens=True) == text


def test_spaces_next_to_special_tokens_survive(synthetic_tokenizer):
    text = f"[seeker] have you seen {MOVIE_TOKEN}? I liked {MOVIE_TOKEN}'s end ({MOVIE_TOKEN}) {REC_TOKEN} bye"
    ids = synthetic_tokenizer(text)["input_ids"]
    assert synthetic_tokenizer.decode(ids, skip_special_tokens=True) == text  # drops </s>, keeps [MOVIE]
    assert ids.count(synthetic_tokenizer.convert_tokens_to_ids(MOVIE_TOKEN)) == 3


def test_escaping_rewrites_control_tokens_only():
    assert escape_control_tokens("I want [REC] now </s>") == "I want (REC) now (/s)"
    assert escape_control_tokens("[rec] [Movie] <PAD> <extra_id_7>") == "(rec) (Movie) (PAD) (extra_id_7)"
    assert escape_control_tokens("I <3 [old] movies, 2 > 1") == "I <3 [old] movies, 2 > 1"


@pytest.mark.parametrize(
    "text",
    [
        "[REC]", "[rec]", "[ReC]", "[MOVIE]", "[movie]", "[seeker]", "[RECOMMENDER]", "[goal] [topic] [item]",
        "</s>", "<pad>", "<unk>", "<s>", "<extra_id_0>", "<EXTRA_ID_99>", "a</s>b[REC]c",
        "［REC］", "＜/s＞", "﹤pad﹥",  # NFKC makes these ASCII brackets
        "[RE\x01C]", "[RE\x0bC]", "[RE\x1cC]", "[RE\tC]", "<\x00/s>",  # the normaliser drops some control characters
        "[[REC]]", "<</s>/s>",
    ],
)
def test_escaped_text_never_tokenizes_to_a_control_token(synthetic_tokenizer, text):
    forbidden = control_ids(synthetic_tokenizer)
    ids = synthetic_tokenizer(escape_control_tokens(f"hi {text} there"), add_special_tokens=False)["input_ids"]
    assert not forbidden & set(ids)


def test_unescaped_look_alikes_would_inject(synthetic_tokenizer):
    """Why escaping normalises first: the tokenizer's own NFKC turns full-width brackets into control tokens."""
    ids = synthetic_tokenizer("hi ＜/s＞ ［REC］", add_special_tokens=False)["input_ids"]
    assert synthetic_tokenizer.eos_token_id in ids and synthetic_tokenizer.convert_tokens_to_ids(REC_TOKEN) in ids


def test_corpus_lines_render_dialogues_movies_and_facts():
    record = {
        "conversationId": "1", "initiatorWorkerId": 1, "respondentWorkerId": 2,
        "movieMentions": {"10": "Heat  (1995)", "99": "Not Catalogued (2001)"},
        "messages": [
            {"senderWorkerId": 1, "text": "I liked @10 and @99"},
            {"senderWorkerId": 1, "text": "anything similar?"},
            {"senderWorkerId": 2, "text": "Try @10 again!"},
        ],
    }
    catalogue = Catalogue([Movie(10, "Heat", 1995, 3, genres=("crime",), directors=("Michael Mann",),
                                 stars=("Al Pacino", "Robert De Niro"), plot="A heist.")])
    kg = KnowledgeGraph(
        entity_names=["Heat (1995 film)", "Al Pacino", "Dave Grusin (composer)"], entity_uris=[None] * 3,
        entity_types=["movie", "person", "person"], relation_names=["starring", "musicComposer", "self_loop"],
        edge_index=torch.tensor([[0, 0, 0, 1], [1, 2, 0, 1]]), edge_type=torch.tensor([0, 1, 2, 2]),
        movie_to_entity={10: 0}, self_loop_relation=2,
    )
    assert list(build_corpus([parse_dialogue(record)], catalogue, kg)) == [
        "[seeker] I liked Heat (1995) and Not Catalogued (2001) anything similar? [recommender] Try Heat (1995) again!",
        "Heat (1995). Genres: crime. Directed by Michael Mann. Starring Al Pacino, Robert De Niro. Plot: A heist.",
        "Heat (1995) starring Al Pacino.",
        "Heat (1995) music composer Dave Grusin.",
    ]


def test_only_unigram_models_are_trained(tmp_path):
    with pytest.raises(ValueError, match="bpe"):
        train_tokenizer(SYNTHETIC_LINES, tmp_path, vocab_size=120, model_type="bpe")


def test_load_tokenizer_names_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="spiece.model"):
        load_tokenizer(tmp_path / "nothing")


@pytest.mark.data
@pytest.mark.slow
def test_tokenizer_stage_trains_on_the_training_split_only(data_dir, tmp_path):
    from train import tokenizer as tokenizer_stage

    assert list(Stage)[0] is Stage.TOKENIZER  # `python -m train all` runs it first
    config = load_config(overrides=[f"data.data_dir={data_dir}", f"output_dir={tmp_path}", "tokenizer.vocab_size=500",
                                    "tokenizer.max_lines=3000"])
    ctx = StageContext(config)
    corpus = "\n".join(tokenizer_stage.stage_corpus(ctx))
    titles = {movie.movie_id: movie.display_name for movie in ctx.catalogue.movies}
    first = ctx.splits.train[0]
    assert render_turns(first.turns, {**first.movie_mentions, **titles}, "corpus") + "\n" in corpus  # dialogue lines
    assert "Toy Story 2 (1999). Genres: animation" in corpus  # movie lines
    assert "Casino Royale (2006) starring Mads Mikkelsen." in corpus  # KG facts
    assert "self loop" not in corpus
    for held_out in (load_split(config.data, "test"), ctx.splits.valid):
        longest = max((render_mentions(t.text, titles) for d in held_out for t in d.turns), key=len)
        assert len(longest) > 200 and longest not in corpus

    metrics = tokenizer_stage.run(ctx, progress=False)
    assert metrics["vocab_size"] == 500 + NUM_SENTINELS and metrics["corpus_lines"] > 100_000
    assert 5 < metrics["tokens_per_train_utterance"] < 60 and metrics["unknown_share_valid"] < 0.01
    tokenizer = load_tokenizer(tmp_path / "tokenizer")
    assert len(tokenizer) == 500 + NUM_SENTINELS


# --- backbones -------------------------------------------------------------------------------


def lm_batch(tokenizer, backbone: str) -> dict[str, torch.Tensor]:
    """A padded batch of two dialogues: causal LM labels for dialogpt, context → reply for t5."""
    contexts = ["[seeker] hi, can you recommend a movie like [MOVIE]?", "[seeker] I love scary horror films."]
    replies = ["[recommender] sure, have you seen [MOVIE]?", "[recommender] [REC] try this one, it is great!"]
    if backbone == "dialogpt":
        batch = tokenizer([f"{c} {r}" for c, r in zip(contexts, replies)], padding=True, return_tensors="pt")
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)  # (B, T)
    else:
        batch = tokenizer(contexts, padding=True, return_tensors="pt")
        target = tokenizer(replies, padding=True, return_tensors="pt")
        labels = target["input_ids"].masked_fill(target["attention_mask"] == 0, -100)  # (B, T_reply)
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels}


@pytest.mark.parametrize("backbone", ["dialogpt", "t5"])
def test_scratch_backbone_learns_and_survives_save_and_load(synthetic_tokenizer, backbone, tmp_path):
    torch.manual_seed(0)
    model = load_backbone(GeneratorConfig(backbone=backbone, init="scratch-tiny", max_length=64), synthetic_tokenizer)
    assert model.config.vocab_size == len(synthetic_tokenizer) and model.config.pad_token_id == 0
    if backbone == "t5":
        assert model.config.decoder_start_token_id == synthetic_tokenizer.pad_token_id and model.config.d_model == 64
    else:
        assert (model.config.n_layer, model.config.n_embd, model.config.n_positions) == (2, 64, 64)
    batch = lm_batch(synthetic_tokenizer, backbone)
    model.eval()  # no dropout: the losses compare like for like
    with torch.no_grad():
        first = model(**batch).loss
    assert torch.isfinite(first)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(5):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    with torch.no_grad():
        last = model(**batch).loss
    assert last < first

    save_model(model, tmp_path / "generator")
    assert (tmp_path / "generator" / "model.safetensors").is_file()
    assert not list((tmp_path / "generator").glob("*.bin"))
    saved = GeneratorConfig(backbone=backbone, init=str(tmp_path / "generator"), max_length=64)
    loaded = load_backbone(saved, synthetic_tokenizer)
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)


def test_checkpoint_embeddings_grow_with_the_tokenizer(synthetic_tokenizer, tmp_path):
    tiny = GeneratorConfig(init="scratch-tiny", max_length=32)
    save_model(load_backbone(tiny, synthetic_tokenizer), tmp_path / "g")
    bigger = load_tokenizer(synthetic_tokenizer.name_or_path)
    bigger.add_tokens(["[new1]", "[new2]"])
    model = load_backbone(GeneratorConfig(init=str(tmp_path / "g"), max_length=32), bigger)
    assert model.get_input_embeddings().num_embeddings == len(bigger) == len(synthetic_tokenizer) + 2


def test_bad_inits_fail_clearly(synthetic_tokenizer, tmp_path):
    config = GeneratorConfig(init="scratch-tiny")
    config.init = "scratch-huge"  # past the config's own check
    with pytest.raises(ValueError, match="unknown scratch size 'scratch-huge'"):
        load_backbone(config, synthetic_tokenizer)
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        load_backbone(GeneratorConfig(init=str(tmp_path / "no_such_folder")), synthetic_tokenizer)
    t5 = GeneratorConfig(backbone="t5", init="scratch-tiny")
    save_model(load_backbone(t5, synthetic_tokenizer), tmp_path / "t5")
    with pytest.raises(ValueError, match="not a dialogpt backbone"):
        load_backbone(GeneratorConfig(backbone="dialogpt", init=str(tmp_path / "t5")), synthetic_tokenizer)
    short = GeneratorConfig(init="scratch-tiny", max_length=32)
    save_model(load_backbone(short, synthetic_tokenizer), tmp_path / "gpt")
    with pytest.raises(ValueError, match="exceeds the 32 positions"):
        load_backbone(GeneratorConfig(init=str(tmp_path / "gpt"), max_length=64), synthetic_tokenizer)


def test_scratch_table_covers_every_size_and_small_is_about_5m():
    assert all(tuple(sizes) == GENERATOR_SCRATCH_INITS for sizes in SCRATCH_SIZES.values())
    small = GPT2LMHeadModel(GPT2Config(vocab_size=8100, n_positions=256, **SCRATCH_SIZES["dialogpt"]["scratch-small"]))
    assert 4.5e6 < small.num_parameters() < 6e6


# --- config ------------------------------------------------------------------------------------


def test_generator_and_tokenizer_defaults():
    config = load_config()
    tokenizer = config.tokenizer
    assert (tokenizer.vocab_size, tokenizer.model_type, tokenizer.max_lines) == (8000, "unigram", 0)
    assert (config.generator.backbone, config.generator.init) == ("dialogpt", "scratch-small")
    overridden = load_config(overrides=["generator.backbone=t5", "generator.init=some/folder"])
    assert (overridden.generator.backbone, overridden.generator.init) == ("t5", "some/folder")


@pytest.mark.parametrize(
    "override, match",
    [
        ("generator.backbone=bert", r"generator\.backbone: must be one of"),
        ("generator.init=scratch-huge", r"generator\.init: unknown scratch size"),
        ("generator.init=", r"generator\.init"),
        ("generator.max_length=4", r"generator\.max_length"),
        ("generator.no_such_key=1", r"generator\.no_such_key"),
        ("tokenizer.vocab_size=10", r"tokenizer\.vocab_size"),
        ("tokenizer.model_type=bpe", r"tokenizer\.model_type"),
        ("tokenizer.max_lines=-1", r"tokenizer\.max_lines"),
    ],
)
def test_bad_generator_and_tokenizer_keys_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=[override])
