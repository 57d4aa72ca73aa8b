import numpy as np
import pytest
import torch

from crs.config import load_config
from crs.data import Catalogue, Dialogue, Movie, Turn
from crs.data.context import DialogueContext
from crs.rec.features import Featurizer, cooccurrence_matrix, movie_text
from crs.rec.kg_text import KGTextRecommender, build_model
from crs.rec.model import AttentionPooling
from kg.graph import GENRE, MOVIE, PERSON, KnowledgeGraph
from kg.linker import EntityLinker

MOVIES = [
    Movie(101, "The Matrix", 1999, 50, genres=("sci-fi", "action"), directors=("Lana Wachowski",), stars=("Keanu Reeves",)),
    Movie(102, "John Wick", 2014, 30, genres=("action",), stars=("Keanu Reeves",)),
    Movie(103, "Notting Hill", 1999, 20, genres=("romance", "comedy"), stars=("Julia Roberts",)),
    Movie(104, "Pretty Woman", 1990, 25, genres=("romance",), stars=("Julia Roberts",)),
]


def tiny_world():
    """Four movies, two actors, three genres; movies 0-3 are entities 0-3."""
    names = ["The Matrix (film)", "John Wick (film)", "Notting Hill (film)", "Pretty Woman", "Keanu Reeves", "Julia Roberts",
             "action (genre)", "romance (genre)", "comedy (genre)"]
    types = [MOVIE] * 4 + [PERSON] * 2 + [GENRE] * 3
    triples = [(0, 0, 4), (1, 0, 4), (2, 0, 5), (3, 0, 5), (0, 1, 6), (1, 1, 6), (2, 1, 7), (3, 1, 7), (2, 1, 8)]
    heads, rels, tails = zip(*triples)
    kg = KnowledgeGraph(names, [None] * 9, types, ["starring", "genre", "self_loop"], torch.tensor([heads, tails]),
                        torch.tensor(rels), {101: 0, 102: 1, 103: 2, 104: 3}, self_loop_relation=2)
    catalogue = Catalogue(list(MOVIES))
    dialogues = [Dialogue("a", 1, 2, {101: "", 102: ""}, {}, {}, [], 0), Dialogue("b", 1, 2, {101: "", 102: "", 103: ""}, {}, {}, [], 0)]
    return kg, catalogue, dialogues


def tiny_recommender(overrides=()):
    kg, catalogue, dialogues = tiny_world()
    config = load_config(overrides=["rgcn.dim=8", "rgcn.num_bases=2", "rgcn.min_relation_edges=1", "rec.use_text=false", "rec.use_sentiment=false", *overrides])
    linker = EntityLinker.build(kg, catalogue, config.linking)
    featurizer = Featurizer(catalogue, kg, linker, cooccurrence_matrix(dialogues, catalogue), config.rec.max_context_entities)
    model = build_model(config, kg, catalogue, None)
    return KGTextRecommender(config, model, featurizer, None)


def context(*turns):
    return DialogueContext([Turn(role, text, []) for role, text in turns])


def test_attention_pooling_ignores_padding_and_handles_empty_rows():
    pool = AttentionPooling(4)
    x = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, False, False], [False, False, False]])
    out = pool(x, mask)
    assert torch.allclose(out[0], x[0, 0]) and torch.equal(out[1], torch.zeros(4))


def test_cooccurrence_counts_dialogues_by_hand():
    _, catalogue, dialogues = tiny_world()
    dense = cooccurrence_matrix(dialogues, catalogue).to_dense()
    assert dense[0, 1] == 2 and dense[0, 2] == 1 and dense[2, 3] == 0 and dense[0, 0] == 0
    assert torch.equal(dense, dense.T)


def test_features_link_entities_and_mark_mentions():
    recommender = tiny_recommender()
    features = recommender.featurizer.features(context(("seeker", "I loved The Matrix with Keanu Reeves"), ("recommender", "Then try @102")))
    assert features.entities[:2] == [0, 4] and features.entities[-1] == 1
    assert features.mention_items == [0, 1]
    assert features.mention_values == [[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 1.0, 0.0]]  # by seeker, by recommender, recency, sentiment
    assert features.text == "Seeker: I loved The Matrix with Keanu Reeves Recommender: Then try John Wick (2014)"
    assert movie_text(MOVIES[0]) == "The Matrix (1999). Genres: sci-fi, action. Directed by Lana Wachowski. Starring Keanu Reeves."


def test_sentiment_reaches_mentions_and_entities():
    recommender = tiny_recommender()
    recommender.featurizer.sentiment = lambda texts: [0.0 if "hated" in t else 1.0 for t in texts]
    features = recommender.featurizer.features(context(("seeker", "I hated The Matrix"), ("recommender", "Try @103"), ("seeker", "Loved it!")))
    assert features.mention_items == [0, 2]
    assert [v[3] for v in features.mention_values] == [-1.0, 1.0]  # the seeker's reaction to 103 is their next turn
    assert features.entity_sentiment[features.entities.index(0)] == -1.0 and features.entity_sentiment[features.entities.index(2)] == 1.0
    batch = recommender.featurizer.collate([features], None)
    assert batch["entity_sentiment"].shape == batch["entities"].shape


def test_scores_follow_the_context_and_training_lowers_the_loss():
    torch.manual_seed(0)
    recommender = tiny_recommender(["rec.use_cooccurrence=false"])
    model = recommender.model
    keanu = context(("seeker", "anything with Keanu Reeves?"))
    julia = context(("seeker", "I like Julia Roberts"))
    features = [recommender.featurizer.features(c) for c in (keanu, julia)]
    batch = recommender.featurizer.collate(features, None)
    labels = torch.tensor([1, 3])  # Keanu → John Wick, Julia → Pretty Woman
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    first = model(**batch, labels=labels).loss.item()
    for _ in range(30):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 4
    model.eval()
    recommender.refresh()
    scores = recommender.score_batch([keanu, julia])
    assert scores.shape == (2, 4)
    assert scores[0].argmax() == 1 and scores[1].argmax() == 3  # the ranking changes with the input
    top = recommender.top_k(context(("seeker", "I like Julia Roberts and Pretty Woman")), k=2)
    assert 104 not in [movie for movie, _ in top]  # a mentioned movie is not recommended again


def test_negatives_leave_other_labels_and_mentioned_movies_out_of_the_softmax():
    from crs.data.samples import Sample
    from train.rec import batch_maker

    recommender = tiny_recommender(["rec.use_cooccurrence=false"])
    catalogue = recommender.catalogue
    turn = Sample("a", 1, [Turn("seeker", "I loved @101", [101])], Turn("recommender", "@101 @102 @103", [101, 102, 103]),
                  [101], [101, 102, 103], [102, 103], {})

    def only_batch(negatives):
        batches, count = batch_maker([turn], catalogue, 8, lambda rows: {"rows": rows}, negatives)
        (batch,) = list(batches(0))
        assert count == 3  # one instance per movie the turn names
        return batch

    assert "excluded" not in only_batch("all")
    batch = only_batch("other-labels")
    for label, row in zip(batch["labels"].tolist(), batch["excluded"].tolist()):
        # each instance keeps its own label and leaves out the turn's other movies, nothing else
        assert row == [i != label for i in range(3)] + [False]
    batch = only_batch("other-labels+mentioned")
    for label, row in zip(batch["labels"].tolist(), batch["excluded"].tolist()):
        assert [i for i, out in enumerate(row) if out] == sorted({0, 1, 2} - {label})  # @101 was mentioned before
    with pytest.raises(ValueError, match="rec.negatives"):
        batch_maker([turn], catalogue, 8, lambda rows: {}, "hard")

    # the loss ignores the excluded movies' scores and stays finite
    features = recommender.featurizer.collate([recommender.featurizer.features(context(("seeker", "I loved The Matrix")))] * 2, None)
    excluded = torch.tensor([[False, False, True, True], [False, False, False, False]])
    model = recommender.model
    model.eval()
    with torch.no_grad():
        scores = model(**features).scores
        loss = model(**features, labels=torch.tensor([1, 1]), excluded=excluded).loss
    kept = torch.log_softmax(scores[0, :2], -1)[1]
    full = torch.log_softmax(scores[1], -1)[1]
    assert torch.isclose(loss, -(kept + full) / 2, atol=1e-5)
    with pytest.raises(ValueError, match="rec.negatives"):
        load_config(overrides=["rec.negatives=hard"])


def test_rec_state_slot_changes_scores():
    torch.manual_seed(0)
    recommender = tiny_recommender(["rec.rec_state_dim=5"])
    features = [recommender.featurizer.features(context(("seeker", "hi")))]
    batch = recommender.featurizer.collate(features, None)
    model = recommender.model
    with torch.no_grad():
        # The projection starts at zero: the untrained model ignores the state.
        assert torch.equal(model(**batch, rec_state=torch.ones(1, 5)).scores, model(**batch).scores)
    optimizer = torch.optim.SGD(model.rec_state_projection.parameters(), lr=0.5)
    model(**batch, rec_state=torch.ones(1, 5), labels=torch.tensor([2])).loss.backward()
    optimizer.step()
    with torch.no_grad():
        a = model(**batch, rec_state=torch.zeros(1, 5)).scores
        b = model(**batch, rec_state=torch.ones(1, 5)).scores
    assert a.shape == b.shape == (1, 4) and not torch.allclose(a, b)
    assert int(b.argmax()) == 2 or b[0, 2] - b[0].mean() > a[0, 2] - a[0].mean()  # the step moved the state towards the label


def test_checkpoint_round_trip_and_broken_checkpoint(tmp_path):
    torch.manual_seed(0)
    recommender = tiny_recommender()
    recommender.save_pretrained(tmp_path / "ckpt", metrics={"x": 1})
    loaded = KGTextRecommender.from_pretrained(tmp_path / "ckpt")
    c = context(("seeker", "The Matrix was great"))
    # Weights are stored in fp16: scores agree to fp16 precision and rank the movies alike.
    original, reloaded = recommender.score_items(c), loaded.score_items(c)
    np.testing.assert_allclose(original, reloaded, atol=2e-2)
    assert list(np.argsort(-original)) == list(np.argsort(-reloaded))
    assert loaded.catalogue.by_id(101).stars == ("Keanu Reeves",) and loaded.catalogue.by_id(101).plot == ""
    (tmp_path / "ckpt" / "kg" / "triples.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="missing kg/triples.safetensors"):
        KGTextRecommender.from_pretrained(tmp_path / "ckpt")
