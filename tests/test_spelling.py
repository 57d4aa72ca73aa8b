"""Misspelt request words put right (crs.text.spelling)."""

from __future__ import annotations

import pytest

from crs.text.spelling import correct_request_words, correction


@pytest.mark.parametrize("typed, meant", [
    ("Can u recomend a scary movi?", "Can u recommend a scary movie?"),
    ("somthing older", "something older"),
    ("who directd it", "who directed it"),
    ("Suggest a horor film", "Suggest a horror film"),
    ("anythng with Tom Hanks?", "anything with Tom Hanks?"),
    ("I like komedies from the 90s", "I like comedies from the 90s"),
])
def test_misspelt_request_words_are_put_right(typed, meant):
    assert correct_request_words(typed) == meant


@pytest.mark.parametrize("text", [
    "the holder of the title",  # an English word near "older" stays
    "I love Keanu and Scarry Movie",  # capitalised words may be names or titles
    "i watched it yesterday, it was hilarious",
    "asdfgh qwerty",  # nothing near a request word
    "@12345 [REC] recomend",  # placeholders and slots untouched; the word after them is corrected
])
def test_other_words_stay(text):
    expected = text.replace("recomend", "recommend")
    assert correct_request_words(text) == expected


def test_correction_needs_closeness():
    assert correction("movi") == "movie" and correction("movie") is None
    assert correction("mvoie") == "movie"  # a swap counts once (Damerau)
    assert correction("mxxxe") is None
