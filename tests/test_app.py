from pathlib import Path

from crs.chat import MAX_MESSAGE_CHARS, clean_message, respond_without_model


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
