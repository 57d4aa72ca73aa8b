"""Tuning-free prompting (crs.gen.ranker): templates, LM-likelihood ranking for both backbones, loading, harness."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

from crs.config import load_config
from crs.data import Catalogue, Dialogue, Movie, Turn
from crs.data.context import DialogueContext
from crs.data.samples import build_samples
from crs.eval.harness import evaluate_recommender, load_spec
from crs.gen.ranker import (
    CANDIDATE_FLOOR,
    DEFAULT_TEMPLATE_NAME,
    ZeroShotRanker,
    join_titles,
    load_templates,
)
from crs.rec.baselines import PopularityRecommender
from crs.text.tokenizer import train_tokenizer

TEMPLATE = "A user liked {liked}. Next they may want to watch"
TITLES = ["Red Planet", "Blue Ocean", "Green Forest", "Dark Night", "Silver Moon", "Golden Sun"]
# Who follows whom in the training lines: a cycle, so every movie is a follower exactly once and no
# title is favoured by frequency alone.
FOLLOWER = {i: (i + 1) % len(TITLES) for i in range(len(TITLES))}


@pytest.fixture(scope="module")
def catalogue():
    return Catalogue([Movie(100 + i, title, 2000 + i, 0) for i, title in enumerate(TITLES)])  # ids 100..105


def pair_line(catalogue, liked: int, follower: int) -> str:
    return TEMPLATE.format(liked=catalogue[liked].display_name) + f" {catalogue[follower].display_name}."


@pytest.fixture(scope="module")
def tokenizer(catalogue, tmp_path_factory):
    lines = [pair_line(catalogue, a, b) for a, b in FOLLOWER.items()]
    lines += ["If you liked it, you should also watch. People who enjoyed it also enjoyed [seeker] [recommender]",
              "Can you recommend something similar? I liked 0123456789 , and"]
    return train_tokenizer(lines * 20, tmp_path_factory.mktemp("zero_shot_tokenizer"), vocab_size=100)


def tiny_model(backbone: str, tokenizer):
    torch.manual_seed(0)
    eos = tokenizer.eos_token_id
    common = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id, "eos_token_id": eos}
    if backbone == "dialogpt":
        config = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=96, bos_token_id=eos, **common)
        return GPT2LMHeadModel(config)
    config = T5Config(num_layers=2, num_decoder_layers=2, d_model=32, d_ff=64, num_heads=2, d_kv=16,
                      decoder_start_token_id=tokenizer.pad_token_id, **common)
    return T5ForConditionalGeneration(config)


def train_pairs(model, backbone: str, tokenizer, catalogue, steps: int = 150, lr: float = 1e-2):
    """A few steps of plain LM training on "A user liked X. Next they may want to watch Y." lines
    (text-level span corruption for t5, as a pre-training stage would write it)."""
    pairs = list(FOLLOWER.items())
    if backbone == "dialogpt":
        lines = [[tokenizer.eos_token_id] + tokenizer(pair_line(catalogue, a, b))["input_ids"] for a, b in pairs]
        batch = tokenizer.pad({"input_ids": lines}, return_tensors="pt")
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                  "labels": batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)}
    else:
        sources = [TEMPLATE.format(liked=catalogue[a].display_name) + " <extra_id_0>." for a, _ in pairs]
        targets = [f"<extra_id_0> {catalogue[b].display_name}" for _, b in pairs]  # + </s>
        encoded = tokenizer(sources, padding=True, return_tensors="pt")
        labels = tokenizer(targets, padding=True, return_tensors="pt")["input_ids"]
        inputs = {**encoded, "labels": labels.masked_fill(labels == tokenizer.pad_token_id, -100)}
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(**inputs).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


# Steps and rates where every follower wins by a clear margin (T5 is unstable at 1e-2).
TRAINING = {"dialogpt": {"steps": 150, "lr": 1e-2}, "t5": {"steps": 250, "lr": 3e-3}}


@pytest.fixture(scope="module")
def trained(tokenizer, catalogue):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models gain nothing from threads, and lose much on a busy machine
    try:
        return {backbone: train_pairs(tiny_model(backbone, tokenizer), backbone, tokenizer, catalogue, **options)
                for backbone, options in TRAINING.items()}
    finally:
        torch.set_num_threads(threads)


def save_folder(folder, tokenizer, model, catalogue=None, half=False):
    (folder / "kg").mkdir(parents=True)
    tokenizer.save_pretrained(str(folder / "tokenizer"))
    (copy.deepcopy(model).half() if half else model).save_pretrained(str(folder / "lm"))
    if catalogue is not None:
        catalogue.save(folder / "kg" / "catalogue.json")
    return folder


# --- templates --------------------------------------------------------------------------------


def test_shipped_templates_load_and_name_the_default():
    templates = load_templates()
    assert DEFAULT_TEMPLATE_NAME in templates and len(templates) >= 3
    assert all("{liked}" in text for text in templates.values())


@pytest.mark.parametrize(("text", "match"), [
    ("A user liked movies. Next", r"no \{liked\} field"),
    ("{user} liked {liked}.", "only {liked} may be a field"),
    ("", "non-empty"),
])
def test_a_bad_template_fails_clearly(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(f"good: 'liked {{liked}}'\nbroken: '{text}'\n", encoding="utf-8")
    with pytest.raises(ValueError, match=match) as error:
        load_templates(path)
    assert "broken" in str(error.value)


def test_a_template_is_a_name_or_a_text(tokenizer, catalogue):
    model = tiny_model("dialogpt", tokenizer)
    assert ZeroShotRanker(tokenizer, model, catalogue, template="fans").default_template == load_templates()["fans"]
    with pytest.raises(ValueError, match="neither a template with {liked} nor one of the named"):
        ZeroShotRanker(tokenizer, model, catalogue, template="Movies like these:")
    with pytest.raises(ValueError, match="backbone 't5' does not fit"):
        ZeroShotRanker(tokenizer, model, catalogue, backbone="t5")


def test_liked_titles_read_as_a_list():
    assert [join_titles(t) for t in ([], ["A"], ["A", "B"], ["A", "B", "C"])] == ["", "A", "A and B", "A, B and C"]


# --- ranking ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backbone", ["dialogpt", "t5"])
def test_scores_are_finite_and_rank_permutes_the_candidates(tokenizer, catalogue, backbone):
    ranker = ZeroShotRanker(tokenizer, tiny_model(backbone, tokenizer), catalogue, backbone, TEMPLATE, batch_size=2)
    candidates = [101, 103, 104, 105, 102]
    scores = ranker.score_candidates([100], candidates)
    assert scores.shape == (5,) and np.isfinite(scores).all() and (scores < 0).all()
    ranking = ranker.rank([100], candidates, k=len(candidates))
    assert sorted(movie for movie, _ in ranking) == sorted(candidates)
    assert [s for _, s in ranking] == sorted((s for _, s in ranking), reverse=True)
    assert len(ranker.rank([100], candidates, k=2)) == 2


@pytest.mark.parametrize("backbone", ["dialogpt", "t5"])
def test_batched_scores_equal_one_full_pass_per_candidate(tokenizer, catalogue, backbone):
    """The cached prompt (dialogpt) / shared encoder (t5) and the padded span batches change nothing."""
    model = tiny_model(backbone, tokenizer)
    ranker = ZeroShotRanker(tokenizer, model, catalogue, backbone, TEMPLATE)
    liked, candidates = [100, 102], [101, 103, 104, 105]
    batched = ranker.score_candidates(liked, candidates)
    prompt = ranker.prompt_text(liked)
    assert prompt == "A user liked Red Planet (2000) and Green Forest (2002). Next they may want to watch"
    with torch.no_grad():
        for movie, score in zip(candidates, batched):
            title = catalogue.by_id(movie).display_name
            if backbone == "dialogpt":
                context = [tokenizer.eos_token_id] + tokenizer(prompt, add_special_tokens=False)["input_ids"]
                span = tokenizer(title + ".", add_special_tokens=False)["input_ids"]
                logits = model(input_ids=torch.tensor([context + span])).logits[0, len(context) - 1 : -1]
                target = span
            else:
                sentinel0 = tokenizer.convert_tokens_to_ids("<extra_id_0>")
                source = ranker._prompt_ids(prompt, 0)
                assert source[-1] == tokenizer.eos_token_id and sentinel0 in source
                target = tokenizer(title)["input_ids"]  # title + </s>
                labels = torch.tensor([[sentinel0] + target])
                logits = model(input_ids=torch.tensor([source]), labels=labels).logits[0, 1:]
            single = torch.log_softmax(logits, -1).gather(-1, torch.tensor(target)[:, None]).sum()
            assert score == pytest.approx(float(single), abs=1e-4)
    normalised = ZeroShotRanker(tokenizer, model, catalogue, backbone, TEMPLATE, length_normalise=True)
    lengths = np.array([len(ranker.span_ids(movie)) for movie in candidates])
    np.testing.assert_allclose(normalised.score_candidates(liked, candidates), batched / lengths, rtol=1e-5)


@pytest.mark.parametrize("backbone", ["dialogpt", "t5"])
def test_trained_lm_ranks_the_follower_first_and_follows_the_liked_movie(trained, tokenizer, catalogue, backbone):
    ranker = ZeroShotRanker(tokenizer, trained[backbone], catalogue, backbone, TEMPLATE)
    ids = catalogue.movie_ids
    for liked, follower in FOLLOWER.items():
        candidates = [movie for movie in ids if movie != ids[liked]]
        assert ranker.rank([ids[liked]], candidates, k=1)[0][0] == ids[follower]


# --- loading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backbone", ["dialogpt", "t5"])
def test_from_pretrained_reloads_the_same_ranker(trained, tokenizer, catalogue, backbone, tmp_path):
    folder = save_folder(tmp_path / "run", tokenizer, trained[backbone], catalogue, half=True)
    assert ZeroShotRanker.present(folder)
    ranker = ZeroShotRanker.from_pretrained(folder, template=TEMPLATE)
    assert ranker.backbone == backbone and ranker.model.dtype == torch.float32  # fp16 on disk, fp32 here
    assert ranker.catalogue.movie_ids == catalogue.movie_ids
    original = ZeroShotRanker(tokenizer, trained[backbone], catalogue, backbone, TEMPLATE)
    np.testing.assert_allclose(ranker.score_candidates([100], [101, 102, 103]),
                               original.score_candidates([100], [101, 102, 103]), atol=0.05)  # fp16 rounding
    assert ZeroShotRanker.from_pretrained(folder).default_template == load_templates()[DEFAULT_TEMPLATE_NAME]


def test_from_pretrained_names_what_is_missing(tokenizer, catalogue, tmp_path):
    folder = tmp_path / "run"
    (folder / "kg").mkdir(parents=True)
    tokenizer.save_pretrained(str(folder / "tokenizer"))
    assert not ZeroShotRanker.present(folder)
    with pytest.raises(FileNotFoundError, match=r"missing lm/config\.json, kg/catalogue\.json"):
        ZeroShotRanker.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match=r"missing lm/config\.json$"):
        ZeroShotRanker.from_pretrained(folder, catalogue=catalogue)
    with pytest.raises(FileNotFoundError, match=r"missing lm/config\.json, tokenizer/, kg/catalogue\.json"):
        ZeroShotRanker.from_pretrained(tmp_path / "nowhere")


# --- the harness ------------------------------------------------------------------------------


def test_score_items_reranks_the_candidates_and_keeps_the_rest_in_order(trained, tokenizer, catalogue):
    popularity = PopularityRecommender(catalogue, np.array([1.0, 2, 3, 4, 5, 6]))  # order: 105, 104, ..., 100
    ranker = ZeroShotRanker(tokenizer, trained["dialogpt"], catalogue, "dialogpt", TEMPLATE,
                            candidate_recommender=popularity, num_candidates=3)
    # 103 is mentioned: the candidates are the 3 most popular others (105, 104, 102) plus 103 itself.
    context = DialogueContext([Turn("seeker", "I liked @103", [103])], mentioned_movies=[103])
    scores = ranker.score_items(context)
    assert scores.shape == (6,) and np.isfinite(scores).all()
    candidates = [catalogue.index(m) for m in (105, 104, 102, 103)]
    others = [catalogue.index(m) for m in (101, 100)]  # popularity order
    assert scores[candidates].min() > CANDIDATE_FLOOR / 2 > scores[others].max()
    assert scores[others[0]] > scores[others[1]]
    assert np.argmax(scores) == catalogue.index(104)  # the follower of Dark Night (103) in training
    # No liked movie: the candidates keep the candidate recommender's order.
    empty = ranker.score_items(DialogueContext([Turn("seeker", "hi", [])]))
    assert list(np.argsort(-empty)) == [5, 4, 3, 2, 1, 0]


def test_harness_load_spec_builds_and_evaluates_it(trained, tokenizer, catalogue, tmp_path):
    folder = save_folder(tmp_path / "pretrain-lm", tokenizer, trained["t5"])  # no catalogue: the harness's is used
    turns = [Turn("seeker", "I liked @100", [100]), Turn("recommender", "try @101", [101])]
    train = [Dialogue("a", 1, 2, {100: "x", 101: "y"}, {}, {}, turns, 2)]
    config = load_config()
    model, pipeline = load_spec(f"zero-shot={folder}", config, catalogue, train)
    assert isinstance(model, ZeroShotRanker) and model.name.startswith("zero-shot:") and pipeline is None
    assert load_spec(f"zs-t5=zero-shot={folder}", config, catalogue, train)[0].name == "zs-t5"
    with pytest.raises(FileNotFoundError, match="missing lm/config.json"):
        load_spec(f"zero-shot={tmp_path / 'nothing'}", config, catalogue, train)
    result = evaluate_recommender(model, build_samples(train), ks=(1, 3), progress=False)
    assert result.accumulators["new_items"].ranks == [1]  # Red Planet → Blue Ocean, learned above
