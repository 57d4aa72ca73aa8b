"""The simulated seeker (crs.eval.simulator): targets from the questionnaires, the rule-based policy,
no target ever named, the chat played from scratch, and the harness's interactive task."""

from __future__ import annotations

import json

import pytest

from crs.config import DataConfig, load_config
from crs.data.catalogue import duplicates
from crs.data.splits import load_split
from crs.eval.simulator import (
    ChatSystem,
    Fact,
    LeakCheck,
    Profile,
    RankerSystem,
    RuleSeeker,
    SystemTurn,
    evaluate_interactive,
    play,
    profiles,
)
from crs.serve.chat import is_rejection


@pytest.fixture(scope="module")
def test_dialogues(data_dir):
    return load_split(DataConfig(data_dir=str(data_dir)), "test")


@pytest.fixture(scope="module")
def same_film(catalogue):
    return lambda ids: duplicates(catalogue, ids)


@pytest.fixture(scope="module")
def people(test_dialogues, catalogue, same_film):
    return profiles(test_dialogues, catalogue, same_film)


class ScriptedSystem:
    """Recommends the given movies, one per turn (None: a question without a movie)."""

    name = "scripted"

    def __init__(self, plan):
        self.plan = list(plan)

    def new(self):
        return {"turn": 0}

    def turn(self, state, text):
        movie = self.plan[state["turn"]] if state["turn"] < len(self.plan) else None
        state = {"turn": state["turn"] + 1}
        if movie is None:
            return state, SystemTurn("What kind of movies do you like?", [], [])
        return state, SystemTurn(f"How about movie {movie}?", [movie], [movie])


def test_targets_are_the_suggested_movies_the_seeker_liked(test_dialogues, people, catalogue):
    by_id = {d.conversation_id: d for d in test_dialogues}
    assert len(people) > 1000  # most test dialogues have a target
    for profile in people[:200]:
        dialogue = by_id[profile.conversation_id]
        answers = dialogue.seeker_feedback or dialogue.recommender_feedback
        assert profile.targets and all(answers[t].suggested == 1 and answers[t].liked == 1 for t in profile.targets)
        assert all(answers[m].suggested == 0 and answers[m].liked == 1 for m in profile.liked)
        assert not set(profile.liked) & set(profile.targets)
        first = catalogue.by_id(profile.targets[0])
        assert {f.value for f in profile.facts if f.kind == "genre"} == set(first.genres)
        assert profile.facts[0].kind == "genre" or not first.genres


def test_leak_check_reads_titles_as_words_and_short_titles_only_as_names(catalogue):
    ids = {m.title: m.movie_id for m in catalogue.movies}
    check = LeakCheck(catalogue, [ids["Avengers: Infinity War"], ids["It"]])
    assert check("I think avengers infinity war would be fun")
    assert check("I loved It, so scary") and not check("I've seen it already.") and not check("It sounds good.")
    assert not check("I like action movies with Robert Downey Jr.")


def test_rule_seeker_accepts_a_target_and_rejects_others_with_a_reason(people, catalogue, same_film):
    profile = next(p for p in people if len(p.facts) >= 4 and p.liked)
    other = next(m.movie_id for m in catalogue.movies if m.movie_id not in profile.targets and m.genres)
    seeker = RuleSeeker(catalogue, same_film=same_film)
    conversation = play(ScriptedSystem([None, other, profile.targets[-1]]), seeker, profile, max_turns=5)
    acts = [m["act"] for m in conversation.messages if m["role"] == "user"]
    assert acts == ["open", "inform", "reject", "accept"] and conversation.success_turn == 3
    reject = [m["content"] for m in conversation.messages if m.get("act") == "reject"][0]
    assert is_rejection(reject)  # the chat reads the turn-down as one
    inform = [m["content"] for m in conversation.messages if m.get("act") == "inform"][0]
    facts = [f.value for f in profile.facts] + [catalogue.by_id(m).display_name for m in profile.liked]
    assert any(value in inform for value in facts)  # an answer reveals a preference
    # Recall@k by turn: the ranking held no target until the last turn; afterwards it stays.
    assert conversation.recall["recall@1"][:2] == [0.0, 0.0] and conversation.recall["recall@1"][2] > 0
    assert conversation.recall["recall@1"][2:] == [conversation.recall["recall@1"][2]] * 3


def test_reasons_never_turn_down_a_genre_the_targets_have(people, catalogue, same_film):
    seeker = RuleSeeker(catalogue, same_film=same_film)
    for profile in people[:100]:
        state = seeker.start(profile)
        wanted = {g for t in profile.targets for g in catalogue.by_id(t).genres}
        for movie in catalogue.movies[:30]:
            reason = seeker.reason(state, movie.movie_id)
            if reason is not None and reason.kind == "not-genre":
                assert reason.value in movie.genres and reason.value not in wanted


def test_a_sentence_that_would_name_the_target_is_never_said(catalogue, same_film):
    target = next(m for m in catalogue.movies if m.title == "Avengers: Infinity War")
    # A preference that spells the title: every candidate built from it leaks, so a safe sentence is said.
    profile = Profile("x", [target.movie_id], [], [Fact("actor", "Avengers Infinity War")])
    seeker = RuleSeeker(catalogue, same_film=same_film)
    conversation = play(ScriptedSystem([None, None]), seeker, profile, max_turns=2)
    said = [m["content"] for m in conversation.messages if m["role"] == "user"]
    assert said and not any(LeakCheck(catalogue, [target.movie_id])(text) for text in said)
    assert conversation.leaked == 0


@pytest.mark.slow
def test_chat_conversations_never_leak_and_are_deterministic(pipeline, people, catalogue, same_film):
    seeker = RuleSeeker(catalogue, pipeline.link, same_film)
    system = ChatSystem(pipeline, "crs")
    sample = people[:12]
    first = evaluate_interactive(system, seeker, sample, max_turns=3, progress=False)
    again = evaluate_interactive(system, seeker, sample, max_turns=3, progress=False)
    assert [c.messages for c in first.conversations] == [c.messages for c in again.conversations]
    summary = first.summary()
    assert summary["leaked_turns"] == 0 and summary["conversations"] == 12
    assert 0 <= summary["success@1"] <= summary["success@2"] <= summary["success@3"] <= 1
    for conversation in first.conversations:
        check = LeakCheck(catalogue, conversation.targets, pipeline.link, same_film)
        assert not any(check(m["content"]) for m in conversation.messages if m["role"] == "user")
        # A conversation ends at the first recommended target, and only then.
        hits = [i for i, m in enumerate(conversation.messages) if m["role"] == "assistant" and check.ids & set(m["items"])]
        assert (conversation.success_turn is not None) == bool(hits)
        if hits:
            assert hits[0] == len(conversation.messages) - 2 and conversation.messages[-1]["act"] == "accept"


def test_popularity_behind_the_template_never_repeats_a_movie(pipeline, test_dialogues, people, catalogue, same_film):
    from crs.rec.baselines import BASELINES

    popularity = BASELINES["popularity"].fit(test_dialogues[:300], catalogue)  # any dialogues will do: behaviour only
    system = RankerSystem(popularity, pipeline.link, "popularity", same_film)
    conversation = play(system, RuleSeeker(catalogue, pipeline.link, same_film), people[0], max_turns=4)
    recommended = [m for message in conversation.messages if message["role"] == "assistant" for m in message["items"]]
    assert len(recommended) == len(set(recommended)) > 0
    named = [m for message in conversation.messages if message["role"] == "user" for m in profile_movies(message, pipeline)]
    assert not set(named) & set(recommended)  # a movie the seeker named is never recommended back


def profile_movies(message, pipeline):
    return [e.movie_id for e in pipeline.link(message["content"]) if e.movie_id is not None]


@pytest.mark.slow
def test_harness_writes_the_interactive_table(data_dir, checkpoint_dir, tmp_path):
    from crs.eval.harness import run

    config = load_config(overrides=[f"data.data_dir={data_dir}", "eval.limit=6"])
    run(config, ["popularity", f"crs={checkpoint_dir}"], "test", ["interactive"], tmp_path, progress=False, max_turns=3)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    runs = metrics["interactive"]
    assert set(runs) == {"popularity", "crs"} and all(set(r) == {"rule"} for r in runs.values())
    assert set(runs["crs"]["rule"]) >= {"success@1", "success@2", "success@3", "turns_to_success", "recall@1_by_turn",
                                        "recall@10_by_turn", "leaked_turns"}
    assert len(runs["crs"]["rule"]["recall@10_by_turn"]) == 3
    assert set(runs["crs"]["rule"]["fallback_share_by_act"]) >= {"open"} and runs["crs"]["rule"]["fallback_turns"] == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Interactive evaluation" in report and "### Transcripts: popularity, rule seeker" in report
    rows = [json.loads(line) for line in (tmp_path / "interactive_conversations.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * runs["crs"]["rule"]["conversations"]


def test_ui_interactive_mode_streams_the_conversation_and_reveals_targets_last(models, people, catalogue):
    from crs.ui.interactive import interactive_steps

    profile = people[0]
    steps = list(interactive_steps(models, profile.conversation_id, "rule", max_turns=2))
    assert len(steps) >= 3 and [m["role"] for m in steps[0][0]] == ["user"]
    titles = [catalogue.by_id(t).display_name for t in profile.targets]
    assert "revealed now" in steps[-1][1] and all("revealed" not in summary for _, summary in steps[:-1])
    assert any(title.split(" (")[0] in steps[-1][1] for title in titles)
    note = list(interactive_steps(models, "no-such-dialogue", "rule"))
    assert len(note) == 1 and note[0][0] == [] and "not a test dialogue" in note[0][1]
    assert "choose a simulator" in list(interactive_steps(models, "", "oracle"))[0][1]
    first = list(interactive_steps(models, "", "rule", max_turns=1, seed=3))
    assert first[-1][1] == list(interactive_steps(models, "", "rule", max_turns=1, seed=3))[-1][1]  # a seeded random pick


@pytest.mark.slow
def test_learned_seeker_keeps_the_policy_and_never_names_a_target(pipeline, people, catalogue, same_film):
    from pathlib import Path

    from crs.eval.simulator import make_seekers

    folder = Path(__file__).resolve().parent.parent / "checkpoints" / "seeker"
    learned, rule = make_seekers(["learned", "rule"], catalogue, pipeline.link, same_film, folder)
    for profile in people[:6]:
        other = next(m.movie_id for m in catalogue.movies if m.movie_id not in profile.targets and m.genres)
        plan = [None, other, profile.targets[0]]
        said = play(ScriptedSystem(plan), learned, profile, max_turns=3)
        script = play(ScriptedSystem(plan), rule, profile, max_turns=3)
        # The same decisions as the rule-based seeker, in the generator's words where they do the job.
        assert [m.get("act") for m in said.messages] == [m.get("act") for m in script.messages]
        assert said.success_turn == script.success_turn == 3 and said.leaked == 0
        reject = next(m for m in said.messages if m.get("act") == "reject")
        assert is_rejection(reject["content"])
        assert all(m["content"].strip() for m in said.messages if m["role"] == "user")
        assert said.fallbacks == sum(bool(m.get("fallback")) for m in said.messages)


def test_the_run_seed_changes_the_seekers_choices_and_only_the_seed_does(test_dialogues, catalogue, same_film):
    first = profiles(test_dialogues[:80], catalogue, same_film, seed=0)
    again = profiles(test_dialogues[:80], catalogue, same_film, seed=0)
    other = profiles(test_dialogues[:80], catalogue, same_film, seed=7)
    assert [p.facts for p in first] == [p.facts for p in again]
    assert [p.targets for p in first] == [p.targets for p in other]  # the targets are the data's
    assert [p.facts for p in first] != [p.facts for p in other]
    assert all(set(a.facts) == set(b.facts) for a, b in zip(first, other))  # the same facts, another order
    script = ScriptedSystem([None, None, None])
    words = lambda seed: [m["content"] for p in first[:10]  # noqa: E731
                          for m in play(script, RuleSeeker(catalogue, same_film=same_film, seed=seed), p, 3).messages]
    assert words(0) == words(0) != words(3)
