"""Cutting text into streamable pieces without losing or reordering a word."""

from __future__ import annotations

import re

import pytest

from openfish.services.tts.text_split import (
    FIRST_PIECE_CHARS,
    PIECE_CHARS,
    LiveTextBuffer,
    split_for_streaming,
)


def letters(text: str) -> str:
    return re.sub(r"\s+", "", text)


LONG = (
    "When the morning train finally pulled into the station, the passengers, who had waited for more "
    "than an hour in the cold, hurried across the platform toward the warm waiting room. Nobody spoke; "
    "everyone was tired. " * 5
)


@pytest.mark.parametrize("text", [LONG, "Short.", "One. Two! Three? Four…", "a" * 500, "x y " * 200])
def test_pieces_keep_every_word_in_order_within_the_limits(text: str) -> None:
    pieces = split_for_streaming(text)
    assert letters("".join(pieces)) == letters(text)
    assert len(pieces[0]) <= FIRST_PIECE_CHARS
    assert all(0 < len(piece) <= PIECE_CHARS for piece in pieces)


def test_sentences_and_clauses_are_preferred_boundaries() -> None:
    pieces = split_for_streaming(
        "Hello there. This is a longer sentence that runs on, and on, past the limit."
    )
    assert pieces[0] == "Hello there."
    assert pieces[1].endswith("past the limit.")


def test_a_long_first_sentence_is_cut_at_a_clause_or_phrase() -> None:
    pieces = split_for_streaming("The passengers who had waited for an hour, finally boarded the train.")
    assert pieces == ["The passengers", "who had waited for an hour,", "finally boarded the train."]


def test_cjk_sentences_split_without_spaces() -> None:
    assert split_for_streaming("今日はいい天気ですね。明日も晴れるでしょう、たぶん。") == [
        "今日はいい天気ですね。",
        "明日も晴れるでしょう、たぶん。",
    ]


def test_nothing_to_say_gives_no_pieces() -> None:
    assert split_for_streaming("  \n\t ") == []


def feed(fragments: list[str]) -> tuple[list[list[str]], list[str]]:
    buffer = LiveTextBuffer()
    return [buffer.add(fragment) for fragment in fragments], buffer.flush()


def test_live_text_is_cut_as_soon_as_a_sentence_or_clause_is_complete() -> None:
    emitted, rest = feed(["Hello", " world", ".", " This is", " a longer clause,", " and", " the end"])
    assert emitted == [[], [], ["Hello world."], [], ["This is a longer clause,"], [], []]
    assert rest == ["and the end"]


def test_live_text_waits_where_a_mark_may_belong_to_a_number_or_an_abbreviation() -> None:
    emitted, rest = feed(["It costs 3.", "5 dollars", " says Mr.", " Smith. ", "Ok, go"])
    assert emitted == [[], [], [], ["It costs 3.5 dollars says Mr. Smith."], []]
    assert rest == ["Ok, go"]  # "Ok," alone is too short a clause to speak by itself


def test_live_text_without_boundaries_is_cut_at_a_space_within_the_limit() -> None:
    words = " ".join(["word"] * 100)
    emitted, rest = feed([words])
    assert all(len(piece) <= 180 for piece in emitted[0])
    assert " ".join(emitted[0] + rest).split() == words.split()


def test_live_cjk_sentences_end_without_spaces() -> None:
    emitted, rest = feed(["你好。我是", "机器人。"])
    assert emitted == [["你好。"], ["我是机器人。"]]
    assert rest == []
