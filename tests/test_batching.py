"""Concurrent chat turns computed together: the micro-batcher, the batched turn, and the app under
concurrent gradio_client sessions (no cross-talk, rejections per session, the same replies as alone)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from crs.serve.batching import TurnBatcher
from crs.serve.chat import ChatRequest, chat_api, chat_turn, chat_turns
from crs.ui.chat import reasoning_markdown

# ---------------------------------------------------------------------- the batcher alone


def test_requests_that_wait_together_are_computed_together():
    started, release, seen = threading.Event(), threading.Event(), []

    def compute(requests):
        seen.append(list(requests))
        started.set()
        release.wait(30)
        return [r * 10 for r in requests]

    batcher = TurnBatcher(compute, max_batch=16, max_wait=0.0)
    first = batcher.submit(1)
    assert started.wait(30)  # the worker computes the first request alone ...
    rest = [batcher.submit(r) for r in range(2, 9)]  # ... while seven more arrive
    release.set()
    assert first.result(30) == 10 and [f.result(30) for f in rest] == [r * 10 for r in range(2, 9)]
    assert seen == [[1], list(range(2, 9))] and batcher.batch_sizes == [1, 7]
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(3)


def test_a_batch_never_exceeds_max_batch():
    release = threading.Event()

    def compute(requests):
        release.wait(30)
        return list(requests)

    batcher = TurnBatcher(compute, max_batch=3, max_wait=0.0)
    futures = [batcher.submit(r) for r in range(10)]
    release.set()
    assert [f.result(30) for f in futures] == list(range(10))
    assert max(batcher.batch_sizes) <= 3 and sum(batcher.batch_sizes) == 10
    batcher.close()


def test_a_failing_request_fails_alone():
    release = threading.Event()

    def compute(requests):
        release.wait(30)
        if "bad" in requests:
            raise ValueError("cannot compute 'bad'")
        return [r.upper() for r in requests]

    batcher = TurnBatcher(compute, max_wait=0.0)
    futures = [batcher.submit(r) for r in ("a", "bad", "c")]
    release.set()
    assert futures[0].result(30) == "A" and futures[2].result(30) == "C"
    with pytest.raises(ValueError, match="bad"):
        futures[1].result(30)
    batcher.close()


def test_the_lock_is_held_while_a_batch_computes():
    lock = threading.RLock()
    held = []
    batcher = TurnBatcher(lambda requests: [held.append(lock._is_owned()) or r for r in requests], lock=lock)
    assert batcher(5, timeout=30) == 5 and held == [True]
    batcher.close()


def test_a_wave_that_arrives_spread_out_is_gathered_into_one_batch():
    gate, seen = threading.Event(), []

    def compute(requests):
        seen.append(list(requests))
        if "gate" in requests:
            gate.wait(30)
        return list(requests)

    # The worker computes "gate" while a, b and c come: four in flight at once. The batch after it
    # waits (max_gather, long here) for a fourth, which comes later than max_wait.
    batcher = TurnBatcher(compute, max_wait=0.0, max_gather=30.0, window=60.0)
    first = batcher.submit("gate")
    while not seen:
        threading.Event().wait(0.01)
    wave = [batcher.submit(r) for r in "abc"]
    assert batcher.expected() == 4
    gate.set()
    assert first.result(30) == "gate"
    threading.Event().wait(0.2)
    late = batcher.submit("d")
    assert [f.result(30) for f in wave + [late]] == list("abcd")
    assert seen == [["gate"], list("abcd")] and batcher.batch_sizes == [1, 4]
    batcher.close()

    # Without the gathering (max_gather = max_wait = 0) the same wave splits.
    gate.clear()
    seen.clear()
    batcher = TurnBatcher(compute, max_wait=0.0, max_gather=0.0, window=60.0)
    first = batcher.submit("gate")
    while not seen:
        threading.Event().wait(0.01)
    wave = [batcher.submit(r) for r in "abc"]
    gate.set()
    first.result(30)
    [f.result(30) for f in wave]
    late = batcher.submit("d")
    late.result(30)
    assert batcher.batch_sizes == [1, 3, 1]
    batcher.close()


def test_a_lone_user_is_not_kept_waiting_for_others():
    # One turn in flight at a time: each batch expects one request, so the long max_gather is never
    # waited (each result comes well before it).
    batcher = TurnBatcher(lambda requests: [r * 2 for r in requests], max_wait=0.0, max_gather=60.0, window=60.0)
    for r in range(5):
        assert batcher.expected() == 1
        assert batcher(r, timeout=30) == r * 2
    assert batcher.batch_sizes == [1] * 5
    batcher.close()
    # What was in flight together is forgotten after ``window`` seconds.
    release = threading.Event()
    batcher = TurnBatcher(lambda requests: release.wait(30) and list(requests), max_wait=0.0, window=0.0)
    futures = [batcher.submit(r) for r in range(3)]
    release.set()
    assert [f.result(30) for f in futures] == [0, 1, 2] and batcher.expected() == 1
    batcher.close()


def test_turns_that_arrive_while_a_batch_computes_are_queued_at_once(monkeypatch, tmp_path):
    # The served models' batcher holds the model lock while a batch computes; a user's turn that
    # arrives then must be queued for the next batch, not wait for the lock to submit it.
    from crs.serve import chat as chat_module
    from crs.serve.models import Models

    started, release = threading.Event(), threading.Event()

    def compute(pipeline, requests, checkpoint):
        started.set()
        release.wait(30)
        return [f"reply to {r}" for r in requests]

    monkeypatch.setattr(chat_module, "chat_turns", compute)
    models = Models(checkpoint=tmp_path, pipeline=object())
    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(models.chat_turn, "a")
        assert started.wait(30)
        later = [pool.submit(models.chat_turn, r) for r in ("b", "c")]
        for _ in range(3000):  # both are queued while "a" computes (before, they waited for the lock)
            if models._batcher._queue.qsize() == 2:
                break
            threading.Event().wait(0.01)
        assert models._batcher._queue.qsize() == 2 and not first.done()
        release.set()
        assert first.result(30) == "reply to a" and [f.result(30) for f in later] == ["reply to b", "reply to c"]
    assert models.batch_sizes == [1, 2]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_batch"):
        TurnBatcher(list, max_batch=0)
    with pytest.raises(ValueError, match="max_gather"):
        TurnBatcher(list, max_gather=-1.0)


# ---------------------------------------------------------------------- the batched turn, real checkpoint


def test_a_batch_of_turns_gives_each_the_reply_it_gets_alone(pipeline):
    first = chat_turn(pipeline, "I loved The Matrix, anything similar?")
    second = chat_turn(pipeline, "Something with Tom Hanks please")
    requests = [
        ChatRequest("I've seen that one, something else?", first.state, reasoning_markdown),  # a rejection
        ChatRequest("Thanks, I'll watch it!", second.state),  # a farewell
        ChatRequest("Who directed The Matrix?"),  # a question answered from the KG
        ChatRequest("   "),  # empty: a notice, no turn
        ChatRequest("Any good 80s horror movies, not too gory?"),
        ChatRequest("hi"),
        ChatRequest("I liked Heat and The Departed", second.state),
    ]
    batched = chat_turns(pipeline, requests)
    alone = [chat_turn(pipeline, r.message, r.state, reasoning=r.reasoning) for r in requests]
    for b, a in zip(batched, alone):
        assert (b.reply, b.items, b.notice) == (a.reply, a.items, a.notice)
        assert b.state.history == a.state.history and b.state.rejected == a.state.rejected
        assert [t.reasoning for t in b.state.turns] == [t.reasoning for t in a.state.turns]
    assert set(first.items) <= set(batched[0].state.rejected) and not set(first.items) & set(batched[0].items)
    assert batched[3].reply == "" and batched[3].notice
    assert batched[0].state.turns[-1].reasoning  # the reasoning panel, rendered for the request that asked


# ---------------------------------------------------------------------- the app, concurrent sessions


def test_concurrent_sessions_are_batched_without_cross_talk(live_app, models):
    from gradio_client import Client

    openers = ["I loved The Matrix, anything similar?", "Something with Tom Hanks please", "My kids loved Toy Story",
               "Any good crime movies? Heat is my favourite", "I like sci-fi movies like Interstellar", "I enjoyed The Dark Knight"]
    follow_ups = ["I've seen that one, something else?", "not that one either"]
    before = len(models.batch_sizes)
    start = threading.Barrier(len(openers))

    def session(index: int) -> list[dict]:
        client, history, answers = Client(live_app, verbose=False), None, []
        start.wait(60)
        for message in [openers[index]] + follow_ups:
            answer = client.predict(message, history, api_name="/chat")
            answers.append(answer)
            history = answer["history"]
        return answers

    with ThreadPoolExecutor(max_workers=len(openers)) as pool:
        sessions = list(pool.map(session, range(len(openers))))
    assert max(models.batch_sizes[before:]) > 1  # turns that arrived together were computed together
    for index, answers in enumerate(sessions):
        sent = [openers[index]] + follow_ups
        assert [m["content"] for m in answers[-1]["history"] if m["role"] == "user"] == sent  # only its own messages
        shown = [{m["id"] for m in answer["movies"]} for answer in answers]
        assert not shown[0] & shown[1] and not (shown[0] | shown[1]) & shown[2]  # each turned-down movie stays out
        history = None
        for message, answer in zip(sent, answers):  # the same conversation alone gets the same replies
            alone = chat_api(models.pipeline, message, history, models.checkpoint)
            assert alone["reply"] == answer["reply"]
            history = alone["history"]


def test_the_served_models_are_warmed_up_before_the_first_user(models):
    # Models.load computed one turn: what the first turn builds on first use is there already.
    assert {"facts", "reader", "graph_index"} <= set(vars(models.pipeline))
    messages = ["Something scary from the 80s please", "I loved Heat, anything similar?"]
    before = [chat_api(models.pipeline, m, None, models.checkpoint)["reply"] for m in messages]
    assert models.pipeline.warm_up() >= 0  # and it can be run again (a single turn, then a batch)
    assert [chat_api(models.pipeline, m, None, models.checkpoint)["reply"] for m in messages] == before  # changing no reply


def test_serving_keeps_numpy_blas_on_the_calling_thread():
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    from crs.precision import limit_blas_threads

    threads = torch.get_num_threads()
    with threadpool_limits(limits=None):  # the test process's limits come back afterwards
        limited = limit_blas_threads()
        blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
        assert limited and sorted(limited) == sorted(info["filepath"] for info in blas)
        assert all(info["num_threads"] == 1 for info in blas)
        assert torch.get_num_threads() == threads  # torch's OpenMP threads are left alone
