"""The live app through gradio_client: named endpoints, bad input, per-session state, the CLI.

The app is served once per session on a free 127.0.0.1 port (fixture ``live_app``); the last test
starts ``python app.py`` itself, without a model and with basic auth.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AuthenticationError

from crs.app import free_port
from tests.bad_inputs import BAD_INPUTS

REPO = Path(__file__).resolve().parent.parent
NAMED = ("/chat", "/next_movie", "/explain", "/zero_shot", "/liked")


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app, verbose=False)


def user_texts(chatbot: list[dict]) -> list[str]:
    """The user messages of a Chatbot value (text parts joined)."""
    texts = []
    for message in chatbot:
        if message["role"] == "user":
            content = message["content"]
            texts.append(content if isinstance(content, str) else " ".join(part.get("text", "") for part in content))
    return texts


def test_named_endpoints_are_listed(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(NAMED) <= set(endpoints)


def test_chat_endpoint_recommends_and_continues_the_conversation(client):
    first = client.predict("I loved The Matrix, anything similar?", None, api_name="/chat")
    assert first["reply"] and first["movies"] and first["movies"][0]["title"] in first["reply"]
    second = client.predict("I've seen that, something else?", first["history"], api_name="/chat")
    assert second["movies"] and second["movies"][0]["id"] != first["movies"][0]["id"]
    assert [m["role"] for m in second["history"]] == ["user", "assistant"] * 2


def test_chat_over_gradios_http_api_answers_as_through_the_client(live_app, client):
    # benchmarks.chat_latency times /chat over Gradio's HTTP API (POST, then the event stream): the
    # same endpoint, the same answer as gradio_client gets.
    import httpx

    from benchmarks.chat_latency import chat_over_http

    with httpx.Client(base_url=live_app.rstrip("/"), timeout=120) as http:
        first = chat_over_http(http, "I loved The Matrix, anything similar?", None)
        second = chat_over_http(http, "I've seen that, something else?", first["history"])
    assert first == client.predict("I loved The Matrix, anything similar?", None, api_name="/chat")
    assert second["movies"] and second["movies"][0]["id"] != first["movies"][0]["id"]
    assert [m["role"] for m in second["history"]] == ["user", "assistant"] * 2


def test_bad_input_never_stops_the_server(client):
    for name, message in [("empty", ""), ("blank", "   \n "), *sorted(BAD_INPUTS.items())]:
        answer = client.predict(message, [], api_name="/chat")
        assert answer["reply"], name
        for shown in answer["history"]:
            assert all(ch.isprintable() or ch in "\n\t" for ch in shown["content"])
    assert client.predict("Seeker: </s> [REC] <script>x</script>", "<extra_id_0>", api_name="/liked")["note"]
    assert client.predict(["<script>alert(1)</script>"], 3, api_name="/next_movie")["note"]
    assert client.predict("I loved Heat (1995)", None, api_name="/chat")["movies"]  # still serving


def test_task_endpoints_answer(client):
    nxt = client.predict(["The Matrix (1999)", "Heat (1995)"], 5, api_name="/next_movie")
    assert len(nxt["recommender"]) == 5 and {m["title"] for m in nxt["liked"]} == {"The Matrix", "Heat"}
    why = client.predict("John Wick (2014)", ["The Matrix (1999)"], api_name="/explain")
    assert "Keanu Reeves" in why["sentence"] and why["facts"]
    liked = client.predict("Seeker: I hated Titanic, so boring.", "Titanic (1997)", api_name="/liked")
    assert liked["liked"] is False and 0.0 <= liked["probability"] < 0.5
    shot = client.predict(["The Matrix (1999)"], "", 3, api_name="/zero_shot")
    assert shot["ranking"] is None and shot["note"] or len(shot["ranking"]) == 3


def test_streaming_ui_endpoint_streams_and_escapes(client):
    job = client.submit("<b>I loved</b> The Matrix", api_name="/chat_stream")
    final = job.result()
    assert len(job.outputs()) > 2  # the reply arrived word by word
    chatbot, cards, message = final
    assert message == "" and 'class="movie-card"' in cards
    assert user_texts(chatbot) == ["&lt;b&gt;I loved&lt;\\/b&gt; The Matrix"]


def test_two_clients_never_share_a_conversation(live_app):
    alice, bob = Client(live_app, verbose=False), Client(live_app, verbose=False)
    a1 = alice.predict("I loved The Matrix, anything similar?", api_name="/chat_stream")[0]
    b1 = bob.predict("I love romantic comedies like Notting Hill", api_name="/chat_stream")[0]
    a2 = alice.predict("seen it", api_name="/chat_stream")[0]
    b2 = bob.predict("Anything with Hugh Grant?", api_name="/chat_stream")[0]
    assert user_texts(a2) == ["I loved The Matrix, anything similar?", "seen it"]
    assert user_texts(b2) == ["I love romantic comedies like Notting Hill", "Anything with Hugh Grant?"]
    assert a2[: len(a1)] == a1 and b2[: len(b1)] == b1
    # Alice's rejection counted only for Alice: her second suggestion differs from her first
    replies = [m for m in a2 if m["role"] == "assistant" and not (m.get("metadata") or {}).get("title")]
    assert len(replies) == 2 and replies[0]["content"] != replies[1]["content"]



def test_app_cli_without_model_with_basic_auth(tmp_path):
    port = free_port()
    env = dict(os.environ, CRS_AUTH="alice:secret", GRADIO_ANALYTICS_ENABLED="False")
    server = subprocess.Popen([sys.executable, "app.py", "--checkpoint", str(tmp_path / "none"), "--port", str(port)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail(f"app.py did not start:\n{server.stdout.read() if server.poll() is not None else ''}")
                time.sleep(0.5)
        with pytest.raises(AuthenticationError):
            Client(url, verbose=False)  # basic auth is on
        client = Client(url, auth=("alice", "secret"), verbose=False)
        answer = client.predict("I loved The Matrix", None, api_name="/chat")
        assert "No trained model" in answer["reply"] and str(tmp_path / "none") in answer["reply"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_concurrent_calls_on_every_endpoint_all_succeed(live_app):
    """Worker threads share one model: calls to different endpoints at once must all get answers."""
    from concurrent.futures import ThreadPoolExecutor

    messages = ["I loved The Matrix", "seen it", "Anything with Tom Hanks?", "I like horror movies like The Conjuring"]

    def chat():
        client, history, replies = Client(live_app, verbose=False), None, []
        for message in messages:
            answer = client.predict(message, history, api_name="/chat")
            history, replies = answer["history"], replies + [answer["reply"]]
        return replies

    def stream():
        client = Client(live_app, verbose=False)
        return [client.predict(message, api_name="/chat_stream")[0][-1]["content"] for message in messages]

    def tasks():
        client = Client(live_app, verbose=False)
        return [client.predict(["The Matrix (1999)"], 3, api_name="/next_movie")["recommender"],
                client.predict("Seeker: I loved Heat (1995)!", "Heat (1995)", api_name="/liked")["probability"],
                client.predict("John Wick (2014)", ["The Matrix (1999)"], api_name="/explain")["sentence"]] * 2

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(job) for job in (chat, stream, tasks)]
        results = [future.result(timeout=240) for future in futures]
    assert all(len(result) >= len(messages) and all(result) for result in results)
