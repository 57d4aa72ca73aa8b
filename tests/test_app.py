from pathlib import Path

from crs.serve.chat import MAX_MESSAGE_CHARS, clean_message, respond_without_model


def test_clean_message_drops_control_characters_and_caps_length():
    assert clean_message("  hi\x00\x1b[31m there ") == "hi[31m there"
    assert clean_message(None) == ""
    assert len(clean_message("x" * 20000)) == MAX_MESSAGE_CHARS


def test_chat_without_a_model_says_so_and_keeps_history(tmp_path):
    history = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    out = respond_without_model("I loved The Matrix", history, checkpoint=tmp_path / "ckpt")
    assert out[:2] == history and out[2] == {"role": "user", "content": "I loved The Matrix"}
    assert "No trained model" in out[3]["content"] and str(tmp_path / "ckpt") in out[3]["content"]
    assert respond_without_model("   ", history) == history  # blank input adds nothing


def test_demo_builds_without_a_checkpoint(tmp_path):
    import app

    demo = app.build_demo(Path(tmp_path))
    assert "chat" in {fn.api_name for fn in demo.fns.values()}


NAMED_ENDPOINTS = {"chat", "next_movie", "explain", "zero_shot", "liked"}


def test_demo_without_a_checkpoint_names_every_endpoint_and_says_no_model(tmp_path):
    import app

    demo = app.build_demo(Path(tmp_path))
    assert NAMED_ENDPOINTS <= {fn.api_name for fn in demo.fns.values()}
    assert "No model yet" in str(demo.config)


def test_demo_with_a_model_has_every_tab_and_endpoint(models):
    import app

    demo = app.build_demo(models=models)
    names = {fn.api_name for fn in demo.fns.values()}
    assert NAMED_ENDPOINTS | {"chat_stream"} <= names
    labels = {block.label for block in demo.blocks.values() if type(block).__name__ == "Tab"}
    assert labels == {"Chat", "Next movie", "Explain", "Zero-shot", "Liked?", "Evaluate"}
    assert len(app.movie_choices(models)) > 6000  # the autocomplete covers the catalogue


def test_auth_comes_from_user_colon_password():
    import pytest

    import app

    assert app.parse_auth("alice:se:cret") == ("alice", "se:cret")
    assert app.parse_auth("") is None and app.parse_auth(None) is None
    for bad in ("alice", ":pw", "alice:"):
        with pytest.raises(SystemExit, match="user:password"):
            app.parse_auth(bad)


def test_the_app_loads_matplotlib_before_it_serves_so_no_event_waits_for_it(tmp_path):
    # Gradio switches matplotlib's backend around every event; the app imports it (and pyplot) with
    # "agg" set while it builds, so that switch costs nothing on the server's event loop.
    import sys

    import matplotlib
    from gradio.utils import MatplotlibBackendMananger

    from crs.app import build_demo

    build_demo(tmp_path / "none")
    assert "matplotlib.pyplot" in sys.modules and matplotlib.get_backend().lower() == "agg"
    with MatplotlibBackendMananger():
        assert matplotlib.get_backend().lower() == "agg"
    assert matplotlib.get_backend().lower() == "agg"


def test_what_is_loaded_before_serving_is_frozen_out_of_later_collections_and_garbage_is_freed_first():
    # The app freezes what it loaded (gc.freeze) so that full collections under load no longer walk
    # the models' million objects; garbage made while loading is collected first, not kept forever.
    import gc
    import weakref

    from crs.precision import freeze_loaded_objects

    class Node:
        pass

    cycle = Node()
    cycle.me = cycle  # only the cyclic collector frees it
    gone = weakref.ref(cycle)
    del cycle
    kept = [Node() for _ in range(100)]
    before = gc.get_freeze_count()
    try:
        freeze_loaded_objects()
        assert gone() is None
        assert gc.get_freeze_count() >= before + len(kept)
        assert not any(o is kept for o in gc.get_objects())  # the kept list is no longer tracked by any generation
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())


def test_the_serving_process_loads_with_the_collector_off_then_freezes_what_it_loaded(tmp_path):
    import gc

    from crs.app import load_demo

    before = gc.get_freeze_count()
    try:
        demo = load_demo(tmp_path / "none")
        assert "chat" in {fn.api_name for fn in demo.fns.values()}
        assert gc.isenabled()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
