import json

import pytest

from crs.config import load_config
from crs.data import (
    RECOMMENDER,
    SEEKER,
    build_samples,
    load_dialogues,
    load_splits,
    movie_ids_in,
    normalise_text,
    render_mentions,
    split_title,
)
from crs.data.__main__ import Counts

RECORD = {
    "conversationId": "1",
    "initiatorWorkerId": 10,
    "respondentWorkerId": 20,
    "movieMentions": {"111": "Heat (1995)", "222": "Up  (2009)", "333": "Alien"},
    "initiatorQuestions": {"111": {"suggested": 0, "seen": 1, "liked": 1}},
    "respondentQuestions": [],
    "messages": [
        {"text": "Hi!  I liked @111 &amp; more", "senderWorkerId": 10},
        {"text": "Anything like @111", "senderWorkerId": 10},
        {"text": "Try @222", "senderWorkerId": 20},
        {"text": "or @111 again, or @333", "senderWorkerId": 20},
        {"text": "Thanks &quot;friend&quot;", "senderWorkerId": 10},
        {"text": "Bye", "senderWorkerId": 20},
    ],
}


def write_jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_text_normalisation_and_mentions():
    assert normalise_text("  Tom &amp; Jerry\n\t&quot;x&quot; ") == 'Tom & Jerry "x"'
    assert movie_ids_in("@12 and @7, then @12 again") == [12, 7]
    assert render_mentions("see @12 or @99", {12: "Heat (1995)"}) == "see Heat (1995) or @99"
    assert split_title("Police Academy  (1984)") == ("Police Academy", 1984)
    assert split_title("American Pie ") == ("American Pie", None)


def test_turns_merge_roles_and_samples(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(RECORD)])
    (dialogue,), report = load_dialogues(path)
    assert report.loaded == 1 and report.malformed == 0
    assert [t.role for t in dialogue.turns] == [SEEKER, RECOMMENDER, SEEKER, RECOMMENDER]
    assert dialogue.turns[0].text == "Hi! I liked @111 & more Anything like @111"
    assert dialogue.turns[0].num_messages == 2
    assert dialogue.turns[2].text == 'Thanks "friend"'
    assert dialogue.seeker_feedback[111].liked == 1
    assert dialogue.recommender_feedback == {}  # [] in the release means no answers

    first, second = build_samples([dialogue])
    assert first.context_movies == [111]
    assert first.movies == [222, 111, 333]
    assert first.new_movies == [222, 333]  # 111 was mentioned by the seeker before
    assert len(first.context) == 1 and first.response.role == RECOMMENDER
    assert second.movies == [] and second.context_movies == [111, 222, 333]


def test_seeker_samples_label_the_movies_a_seeker_brings_up(tmp_path):
    from crs.data.samples import seeker_samples

    record = dict(RECORD, movieMentions={**RECORD["movieMentions"], "444": "Cats (2019)", "555": "Heat 2"},
                  initiatorQuestions={"111": {"suggested": 0, "seen": 1, "liked": 1}, "444": {"suggested": 0, "seen": 1, "liked": 0},
                                      "555": {"suggested": 0, "seen": 1, "liked": 2}})
    record["messages"] = RECORD["messages"] + [{"text": "I loved @222 and @555 but hated @444", "senderWorkerId": 10},
                                               {"text": "Is @111 like @555?", "senderWorkerId": 20}]
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(record)])
    (dialogue,), _ = load_dialogues(path)
    samples = seeker_samples(dialogue)
    # the opening names 111; later 222 was recommended before, 444 is marked disliked, 555 is new ("did not say")
    assert [s.movies for s in samples] == [[111], [555]]
    assert [s.response.role for s in samples] == [SEEKER, SEEKER]
    assert samples[0].context == [] and len(samples[1].context) == 4
    assert samples[1].context_movies == [111, 222, 333]
    assert [s.response.role for s in build_samples([dialogue])] == [RECOMMENDER] * 3  # recommender turns as before


def test_malformed_lines_are_counted_and_skipped(tmp_path):
    stranger = dict(RECORD, messages=[{"text": "hi", "senderWorkerId": 99}])
    no_messages = {k: v for k, v in RECORD.items() if k != "messages"}
    bad_questionnaire = dict(RECORD, initiatorQuestions={"111": {"seen": 1}})
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [json.dumps(RECORD), "{not json", json.dumps(stranger), "", json.dumps(no_messages), json.dumps(bad_questionnaire), "[1, 2]"],
    )
    dialogues, report = load_dialogues(path)
    assert len(dialogues) == 1
    assert report.lines == 6 and report.loaded == 1 and report.malformed == 5
    assert report.errors[0].startswith("line 2: not JSON")
    assert any("neither party" in e for e in report.errors)
    assert any("missing keys ['messages']" in e for e in report.errors)
    assert any("questionnaire" in e for e in report.errors)
    assert "5 malformed lines skipped" in report.summary()


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dialogues(tmp_path / "nope.jsonl")


def test_validation_split_is_deterministic_and_disjoint(tmp_path):
    redial = tmp_path / "redial"
    redial.mkdir()
    write_jsonl(redial / "train_subset.jsonl", [json.dumps(dict(RECORD, conversationId=str(i))) for i in range(40)])
    write_jsonl(redial / "test_data.jsonl", [json.dumps(RECORD)])
    config = load_config(overrides=[f"data.data_dir={tmp_path}", "data.valid_fraction=0.25"]).data
    first, again = load_splits(config), load_splits(config)
    ids = lambda ds: [d.conversation_id for d in ds]  # noqa: E731
    assert len(first.valid) == 10 and len(first.train) == 30
    assert ids(first.valid) == ids(again.valid)
    assert not set(ids(first.valid)) & set(ids(first.train))
    other = load_splits(load_config(overrides=[f"data.data_dir={tmp_path}", "data.valid_fraction=0.25", "data.split_seed=99"]).data)
    assert ids(other.valid) != ids(first.valid)
    # A validation limit keeps the first dialogues of the same carve; the rest stay out of training.
    few = load_splits(load_config(overrides=[f"data.data_dir={tmp_path}", "data.valid_fraction=0.25", "data.max_valid_dialogues=4"]).data)
    assert ids(few.valid) == ids(first.valid)[:4] and ids(few.train) == ids(first.train)
    with pytest.raises(ValueError, match="data.max_valid_dialogues"):
        load_config(overrides=["data.max_valid_dialogues=-1"])


def test_full_official_train_file_is_preferred_when_present(tmp_path):
    redial = tmp_path / "redial"
    redial.mkdir()
    write_jsonl(redial / "train_subset.jsonl", [json.dumps(RECORD)])
    write_jsonl(redial / "train_data.jsonl", [json.dumps(dict(RECORD, conversationId=str(i))) for i in range(10)])
    write_jsonl(redial / "test_data.jsonl", [json.dumps(RECORD)])
    splits = load_splits(load_config(overrides=[f"data.data_dir={tmp_path}"]).data)
    assert len(splits.train) + len(splits.valid) == 10
    assert splits.reports[0].path.endswith("train_data.jsonl")


# Counts from ../shared/data/README.md.
@pytest.mark.data
@pytest.mark.parametrize(
    "name, dialogues, messages, movies",
    [("test_data.jsonl", 1342, 23952, 2007), ("train_subset.jsonl", 3469, 62840, 3716), ("train_approx.jsonl", 823, None, None)],
)
def test_shared_files_match_the_data_readme(data_dir, catalogue, name, dialogues, messages, movies):
    loaded, report = load_dialogues(data_dir / "redial" / name)
    assert report.malformed == 0
    counts = Counts.of(loaded, catalogue)
    assert counts.dialogues == dialogues
    if messages is not None:
        assert counts.messages == messages
        assert counts.movies == movies == counts.movies_in_catalogue
    assert counts.samples > 0 and counts.rec_instances >= counts.rec_samples


@pytest.mark.data
def test_catalogue_and_real_splits(data_dir, catalogue):
    assert len(catalogue) == 6924
    assert sum(m.has_metadata for m in catalogue.movies) > 6000
    splits = load_splits(load_config(overrides=[f"data.data_dir={data_dir}", "data.use_approx=true"]).data)
    assert len(splits.test) == 1342
    assert len(splits.valid) == round(3469 * 0.1)
    assert len(splits.train) == 3469 - len(splits.valid) + 823
    assert not {d.conversation_id for d in splits.valid} & {d.conversation_id for d in splits.test}


@pytest.mark.data
def test_stats_command_prints_counts(data_dir, capsys):
    from crs.data.__main__ import main

    main(["stats", "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert "| test_data.jsonl | 1,342 | 23,952 |" in out
    assert "| train_subset.jsonl | 3,469 | 62,840 |" in out
    assert "catalogue: 6,924 movies" in out


def test_url_escapes_in_movie_names_are_decoded(data_dir, tmp_path):
    from crs.data.catalogue import Catalogue, Movie

    catalogue = Catalogue.load(data_dir)
    assert not [m.title for m in catalogue.movies if "%3F" in m.title or "%2C" in m.title]
    assert any(m.title == "O Brother, Where Art Thou?" and m.year == 2000 for m in catalogue.movies)
    # a catalogue file written before the names were decoded (a checkpoint's kg/catalogue.json) reads decoded
    Catalogue([Movie(1, "Why Him%3F", 2016, 3)]).save(tmp_path / "catalogue.json")
    assert Catalogue.read(tmp_path / "catalogue.json").by_id(1).display_name == "Why Him? (2016)"


def test_validation_by_worker_holds_out_recommenders_in_every_role(tmp_path):
    # The official test split's workers take part in no training dialogue; data.valid_by=worker
    # carves validation the same way: held-out recommenders, and none of their dialogues in training.
    redial = tmp_path / "redial"
    redial.mkdir()
    records = []
    for i in range(60):
        seeker, recommender = 100 + i % 7, 200 + i % 11
        if i % 13 == 0:
            seeker = 200 + (i + 3) % 11  # a recommender worker on the seeker's side this time
        messages = [{"text": "Hi! any movie like @111", "senderWorkerId": seeker}, {"text": "Try @222", "senderWorkerId": recommender}]
        records.append(json.dumps(dict(RECORD, conversationId=str(i), initiatorWorkerId=seeker, respondentWorkerId=recommender,
                                       messages=messages)))
    write_jsonl(redial / "train_subset.jsonl", records)
    write_jsonl(redial / "test_data.jsonl", [json.dumps(RECORD)])
    config = load_config(overrides=[f"data.data_dir={tmp_path}", "data.valid_fraction=0.2", "data.valid_by=worker"]).data
    splits, again = load_splits(config), load_splits(config)
    held = {d.recommender_id for d in splits.valid}
    assert splits.valid and 0.1 * 60 <= len(splits.valid) <= 0.3 * 60
    assert [d.conversation_id for d in splits.valid] == [d.conversation_id for d in again.valid]
    assert not any(d.seeker_id in held or d.recommender_id in held for d in splits.train)
    assert all(d.recommender_id in held for d in splits.valid)
    # Every dialogue is in one place: validation, training, or left out (a held-out worker as seeker).
    left_out = {str(i) for i in range(60)} - {d.conversation_id for d in splits.train + splits.valid}
    assert all(any(str(r["conversationId"]) == c and r["initiatorWorkerId"] in held
                   for r in map(json.loads, records)) for c in left_out)
    with pytest.raises(ValueError, match="data.valid_by"):
        load_config(overrides=["data.valid_by=speaker"])
