"""The UI's task handlers (crs.tasks) as pure functions, on the real checkpoint."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass

import pytest

from crs.data.catalogue import duplicates
from crs.serve.models import Models, resolve_movie, resolve_movies
from crs.ui import api, views
from crs.ui.explain import explain_movie
from crs.ui.liked import parse_dialogue, predict_liked
from crs.ui.next_movie import CANDIDATES, PICK_ONE, candidates, next_movie
from crs.ui.zero_shot import zero_shot
from kg.paths import find_paths, path_text


def movie(pipeline, name: str) -> int:
    movie_id = resolve_movie(pipeline, name)
    assert movie_id is not None, name
    return movie_id


class StubRanker:
    """Stands in for crs.gen.ranker.ZeroShotRanker: records its calls, ranks candidates backwards."""

    default_template = "A user liked {liked}. Next they watch"

    def __init__(self, error: Exception | None = None):
        self.calls, self.error = [], error

    def rank(self, liked_ids, candidates, template=None, k=10):
        self.calls.append((list(liked_ids), list(candidates), template, k))
        if self.error is not None:
            raise self.error
        return [(m, -float(i)) for i, m in enumerate(reversed(candidates))][:k]


# ---------------------------------------------------------------------- movie look-ups


def test_movies_resolve_from_ids_names_and_searches(pipeline):
    matrix = movie(pipeline, "The Matrix (1999)")
    assert resolve_movie(pipeline, matrix) == matrix and resolve_movie(pipeline, str(matrix)) == matrix
    assert resolve_movie(pipeline, "the matrix") == matrix  # the year-less duplicate entry loses to the famous one
    assert resolve_movie(pipeline, "The Matrx") == matrix  # typo found by search
    for junk in (None, True, "", "   ", 1.5, -3, "zzqxj qqqzv"):
        assert resolve_movie(pipeline, junk) is None
    ids, unknown = resolve_movies(pipeline, "The Matrix (1999); zzqxj qqqzv; The Matrix (1999)")
    assert ids == [matrix] and unknown == ["zzqxj qqqzv"]
    assert duplicates(pipeline.catalogue, [matrix])  # ReDial lists The Matrix twice


# ---------------------------------------------------------------------- explanations


def test_kg_paths_are_made_of_real_triples(pipeline):
    index = pipeline.graph_index
    triples = set(pipeline.kg.triples())
    matrix, wick = movie(pipeline, "The Matrix (1999)"), movie(pipeline, "John Wick (2014)")
    source, target = pipeline.kg.movie_to_entity[matrix], pipeline.kg.movie_to_entity[wick]
    paths = find_paths(index, [source], target)
    assert paths and all(p.source == source and p.target == target for p in paths)
    for path in paths:
        assert all((f.head, f.relation, f.tail) in triples for f in path.facts)
        ends = {path.facts[0].head, path.facts[0].tail} & {path.facts[-1].head, path.facts[-1].tail}
        assert len(path.facts) == 1 or ends == {path.via}
    keanu = [p for p in paths if p.via is not None and index.label(p.via) == "Keanu Reeves"]
    assert keanu and path_text(index, keanu[0]) == "you mentioned The Matrix (1999); The Matrix (1999) and John Wick (2014) share the star Keanu Reeves"


def test_explanation_states_only_kg_facts(pipeline):
    matrix, wick = movie(pipeline, "The Matrix (1999)"), movie(pipeline, "John Wick (2014)")
    result = explain_movie(pipeline, wick, [matrix])
    triples = set(pipeline.kg.triples())
    assert result.facts and all((f.head, f.relation, f.tail) in triples for f in result.facts)
    assert "Keanu Reeves" in result.sentence and result.source in ("template", "generator")
    allowed = {e for f in result.facts for e in (f.head, f.tail)}
    for entity in pipeline.linker.link(result.sentence):
        assert entity.entity in allowed or entity.movie_id in {matrix, wick, *duplicates(pipeline.catalogue, [matrix, wick])}, entity


def test_explanation_without_a_path_falls_back_to_the_movies_own_facts(pipeline):
    toy_story = movie(pipeline, "Toy Story (1995)")
    result = explain_movie(pipeline, toy_story, [])
    assert result.paths == [] and result.facts and result.sentence.startswith("I suggest Toy Story (1995):")
    assert all(toy_story == pipeline.movie(toy_story).movie_id and f.head == pipeline.kg.movie_to_entity[toy_story] for f in result.facts)


@dataclass
class _Generated:
    goal: str
    topics: list
    item: str
    reply: str


class StubGenerator:
    """Says what it is told to; records the forced prompt steps."""

    def __init__(self, reply: str):
        self.reply, self.forced = reply, []

    def generate(self, contexts, rankings, catalogue, forced=None):
        self.forced.append(forced)
        return [_Generated("recommend", [], "", self.reply) for _ in contexts]


@pytest.fixture
def steps_module(monkeypatch):
    """crs.gen.reply.Steps, or a stand-in while the generator module is not installed."""
    try:
        import crs.gen.reply  # noqa: F401
    except ImportError:
        module = types.ModuleType("crs.gen.reply")

        @dataclass
        class Steps:
            goal: str
            topics: list
            item: str

        module.Steps = Steps
        monkeypatch.setitem(sys.modules, "crs.gen.reply", module)


@pytest.mark.parametrize("reply, grounded", [
    ("You liked The Matrix, and [REC] also stars Keanu Reeves!", True),
    ("You will love [REC], directed by Steven Spielberg and starring Tom Hanks.", False),
])
def test_generated_explanations_must_be_grounded(pipeline, monkeypatch, steps_module, reply, grounded):
    matrix, wick = movie(pipeline, "The Matrix (1999)"), movie(pipeline, "John Wick (2014)")
    generator = StubGenerator(reply)
    monkeypatch.setattr(pipeline, "generator", generator)
    result = explain_movie(pipeline, wick, [matrix])
    steps = generator.forced[0][0]
    assert steps.goal == "recommend" and steps.item == "John Wick (2014)" and "Keanu Reeves" in steps.topics
    if grounded:
        assert result.source == "generator" and result.sentence == reply.replace("[REC]", "John Wick (2014)")
    else:
        assert result.source == "template" and "Spielberg" not in result.sentence
        assert "Steven Spielberg" in result.note and "Tom Hanks" in result.note


def test_a_failing_generator_leaves_the_template(pipeline, monkeypatch, steps_module):
    class Broken:
        def generate(self, *args, **kwargs):
            raise RuntimeError("out of memory")

    monkeypatch.setattr(pipeline, "generator", Broken())
    result = explain_movie(pipeline, movie(pipeline, "John Wick (2014)"), [movie(pipeline, "The Matrix (1999)")])
    assert result.source == "template" and "Keanu Reeves" in result.sentence


# ---------------------------------------------------------------------- next movie and zero-shot


def test_next_movie_never_returns_a_liked_movie(pipeline):
    liked = ["The Matrix (1999)", "Heat (1995)", "zzqxj qqqzv"]
    result = next_movie(pipeline, None, liked, k=7)
    ids = [movie(pipeline, "The Matrix (1999)"), movie(pipeline, "Heat (1995)")]
    assert result.liked == ids and result.unknown == ["zzqxj qqqzv"]
    assert len(result.recommender) == 7 and result.language_model is None
    assert not {*ids, *duplicates(pipeline.catalogue, ids)} & {m for m, _ in result.recommender}
    assert "No language model" in result.note and "zzqxj qqqzv" in result.note
    assert next_movie(pipeline, None, [], k=5).note == PICK_ONE


def test_next_movie_ranks_the_recommenders_top_100_with_the_language_model(pipeline):
    ranker = StubRanker()
    result = next_movie(pipeline, ranker, ["The Matrix (1999)"], k=5)
    (liked, pool, template, k), = ranker.calls
    assert liked == result.liked and k == 5 and template is None
    assert pool == [m for m, _ in candidates(pipeline, liked)] and len(pool) == CANDIDATES
    assert [m for m, _ in result.recommender] == pool[:5]
    assert [m for m, _ in result.language_model] == pool[::-1][:5] and result.note == ""


def test_zero_shot_uses_the_edited_template_and_reports_bad_ones(pipeline):
    ranker = StubRanker()
    result = zero_shot(pipeline, ranker, ["The Matrix (1999)"], "I liked {liked}. Now:", k=3)
    assert ranker.calls[0][2] == "I liked {liked}. Now:" and len(result.ranking) == 3 and result.candidates == CANDIDATES
    assert zero_shot(pipeline, ranker, ["The Matrix (1999)"], "  ").template == StubRanker.default_template
    bad = zero_shot(pipeline, StubRanker(ValueError("no {liked} field")), ["The Matrix (1999)"], "no field")
    assert bad.ranking is None and "cannot be used" in bad.note
    broken = zero_shot(pipeline, StubRanker(RuntimeError("boom")), ["The Matrix (1999)"], None)
    assert broken.ranking is None and "could not rank" in broken.note
    missing = zero_shot(pipeline, None, ["The Matrix (1999)"], None, ranker_note="no language model in this checkpoint")
    assert missing.ranking is None and "no language model" in missing.note


def test_the_checkpoints_language_model_ranks_the_recommenders_candidates(models):
    if models.ranker is None:
        pytest.skip(models.ranker_note)
    result = next_movie(models.pipeline, models.ranker, ["The Matrix (1999)"], k=5)
    pool = {m for m, _ in candidates(models.pipeline, result.liked)}
    scores = [score for _, score in result.language_model]
    assert len(result.language_model) == 5 and {m for m, _ in result.language_model} <= pool
    assert scores == sorted(scores, reverse=True) and result.note == ""
    edited = zero_shot(models.pipeline, models.ranker, ["The Matrix (1999)"], "Fans of {liked} also love", k=3)
    assert len(edited.ranking) == 3 and edited.template == "Fans of {liked} also love"
    assert "cannot be used" in zero_shot(models.pipeline, models.ranker, ["The Matrix (1999)"], "{liked} {oops}").note


# ---------------------------------------------------------------------- liked?


def test_parse_dialogue_reads_speakers_and_continuations():
    text = "Seeker: hi\nI like horror\nRecommender: Have you seen It?\n\nuser: yes\nR: ok"
    assert parse_dialogue(text) == [("seeker", "hi I like horror"), ("recommender", "Have you seen It?"), ("seeker", "yes"), ("recommender", "ok")]
    assert parse_dialogue("I loved Heat") == [("seeker", "I loved Heat")]


def test_liked_prediction_follows_what_the_seeker_says(pipeline):
    loved = predict_liked(pipeline, "Seeker: Hi!\nRecommender: What do you like?\nSeeker: I loved Titanic, one of my favourites!", "Titanic (1997)")
    hated = predict_liked(pipeline, "Seeker: Hi!\nRecommender: What do you like?\nSeeker: I hated Titanic, so boring and way too long.", "Titanic (1997)")
    assert loved.probability is not None, loved.note  # the checkpoint must carry its liked classifier
    assert loved.probability > 0.5 > hated.probability
    assert loved.liked is True and hated.liked is False and "hated Titanic" in hated.evidence and hated.note == ""
    # a movie the recommender brings up is judged by the seeker's reaction
    reaction = predict_liked(pipeline, "Seeker: any drama?\nRecommender: Have you seen Titanic?\nSeeker: Ugh, I hated it, boring.", "Titanic")
    assert reaction.liked is False and reaction.evidence.endswith("Ugh, I hated it, boring.")


def test_liked_prediction_explains_what_it_could_not_do(pipeline):
    absent = predict_liked(pipeline, "Seeker: I like comedies.", "Heat (1995)")
    assert absent.probability is not None and "never talks about Heat (1995)" in absent.note
    assert predict_liked(pipeline, "Seeker: hi", "zzqxj qqqzv").note.startswith("Name a movie")
    assert "no seeker message" in predict_liked(pipeline, "Recommender: hello", "Heat (1995)").note
    assert "no seeker message" in predict_liked(pipeline, None, "Heat (1995)").note


def test_liked_cli_reports_accuracy_and_macro_f1_against_the_majority(data_dir, checkpoint_dir, capsys):
    from crs.ui.liked import main

    main(["--checkpoint", str(checkpoint_dir), "--split", "test", "--limit", "40", "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert "| classifier |" in out and "| majority class" in out and "from 40 dialogues" in out


# ---------------------------------------------------------------------- evaluate


def test_evaluate_view_gives_metrics_and_a_recall_plot(models, data_dir, monkeypatch):
    monkeypatch.setenv("CRS_DATA_DIR", str(data_dir))
    summary, rows, figure = views.evaluate_view(models, 3, progress=False)
    assert "first **3**" in summary
    assert [row[0] for row in rows] == ["standard", "new-items"] and len(rows[0]) == len(views.HEADERS)
    assert all(0.0 <= value <= 1.0 for row in rows for value in row[1:4]) and rows[0][-1] > 0
    assert len(figure.axes[0].lines) == 2


def test_evaluate_view_without_data_says_so(models, monkeypatch, tmp_path):
    monkeypatch.setenv("CRS_DATA_DIR", str(tmp_path))
    summary, rows, figure = views.evaluate_view(models, 3, progress=False)
    summary = summary.replace("\\", "")  # the Markdown escapes
    assert "needs the ReDial test split" in summary and "CRS_DATA_DIR" in summary and rows == [] and figure is None
    assert "number of test dialogues" in views.evaluate_view(models, "many", progress=False)[0]


# ---------------------------------------------------------------------- the JSON endpoints


def test_api_answers_are_json_and_notes_explain_bad_input(models):
    answers = [
        api.next_movie_json(models, ["The Matrix (1999)"], "3"),
        api.explain_json(models, "John Wick (2014)", ["The Matrix (1999)"]),
        api.zero_shot_json(models, ["The Matrix (1999)"], "", 3),
        api.liked_json(models, "Seeker: I loved Heat!", "Heat (1995)"),
        api.explain_json(models, "zzqxj qqqzv", None),
        api.next_movie_json(models, 12, "lots"),
    ]
    for answer in answers:
        json.dumps(answer)
    assert len(answers[0]["recommender"]) == 3
    assert answers[1]["facts"] and answers[1]["paths"] and answers[1]["movie"]["title"] == "John Wick"
    assert answers[3]["liked"] is True
    assert answers[4]["movie"] is None and "Name the movie" in answers[4]["note"]
    assert answers[5]["note"]  # 12 is no movie id: says so, no crash


def test_api_without_a_model_says_so(tmp_path):
    empty = Models.load(tmp_path)
    assert empty.pipeline is None and "No trained model" in empty.note
    for answer in (api.next_movie_json(empty, ["x"]), api.explain_json(empty, "x"), api.zero_shot_json(empty, ["x"]),
                   api.liked_json(empty, "Seeker: x", "x"), api.chat(empty, "hello")):
        assert "No trained model" in (answer.get("note") or answer.get("reply"))
