"""Evaluating response checks: sentence and word counts (the same as before, in linear time),
every check passing and failing, the size limit."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import novabench.analysis.checks
from novabench.analysis.checks import (
    MAX_CHECKED_CHARS,
    count_sentences,
    count_words,
    evaluate,
    parse_json,
)
from novabench.config.checks import JsonCheck, describe
from novabench.config.suite import Checks

# --- sentences ------------------------------------------------------------------------------------

SENTENCES = [
    # rule 1: nothing, or nothing with a letter or digit
    ("", 0),
    ("   \n\t\n ", 0),
    ("...", 0),
    ("🙂", 0),
    ("I'm fine. 😊", 1),
    # plain sentences
    ("Hi", 1),
    ("Hi.", 1),
    ("Paris is the capital of France.", 1),
    ("Yes. No. Maybe.", 3),
    ("The answer is 4. Four is even.", 2),
    # rule 8: the last sentence needs no full stop
    ("Hi. How are you", 2),
    ("Hello. 123", 2),
    # rule 3: a mark needs a space or the line's end after it
    ("2+2=4.", 1),
    ("2 + 2 = 4", 1),
    ("It is 3.5 today.", 1),
    ("Ollama v0.12.6 is out.", 1),
    ("See https://example.com/a.b?c=d for more.", 1),
    ("Visit https://example.com. It helps.", 2),
    ("Email me at john.doe@example.com. Thanks!", 2),
    ("Really?!", 1),
    ("Really?! Yes.", 2),
    ("Hi!!! How are you???", 2),
    ('He said "Stop." Then he left.', 2),
    ("(See above.) Then go.", 2),
    ("I love it (really!). Do you?", 2),
    ("你好。我很好。", 2),
    # rule 4: no end before a lowercase word
    ('"Hi!" she said.', 1),
    ("It costs approx. five euros.", 1),
    ("Apples, pears, etc. are fruit.", 1),
    # rule 5: ellipses
    ("Well... I think so.", 1),
    ("Wait… 4 is right.", 1),
    ("Wait... what?", 1),
    ("Hmm...", 1),
    ("I waited... Nothing happened.", 2),
    ("I waited… Nothing happened.", 2),
    # rule 6: abbreviations
    ("e.g. Paris is a city.", 1),
    ("I like fruit, i.e. Apples and pears.", 1),
    ("Dr. Smith is here. He is nice.", 2),
    ("Mr. and Mrs. Smith arrived.", 1),
    ("Python vs. Java is an old debate.", 1),
    ("Roe v. Wade was decided in 1973.", 1),
    ("St. Louis is in Missouri.", 1),
    ("It costs approx. 5 dollars.", 1),
    ("See Fig. 3 for details.", 1),
    ("It's Jan. 12 today.", 1),
    ("No. 5 is mine.", 1),
    ("No. It is not.", 2),
    ("I like apples, pears, etc. The end.", 2),
    ("He left at 5 p.m. Then he slept.", 2),
    ("Martin Luther King Jr. was a leader.", 1),
    # rule 7: initials and dotted capitals
    ("J. K. Rowling wrote it.", 1),
    ("George W. Bush was president.", 1),
    ("The answer is B. It is even.", 2),
    ("Take vitamin C. It helps.", 2),
    ("The U.S. President lives there.", 1),
    ("I live in the U.S. It is big.", 2),
    # rule 2: lines
    ("It is 4.\nThat is all.", 2),
    ("Hi.\r\nBye.", 2),
    ("Line one\n\nLine two", 2),
    ("Hello\n", 1),
    ("- one\n- two\n- three", 3),
    ("* Paris\n* London", 2),
    ("1. Paris\n2. London", 2),
    ("> Quote here.", 1),
    ("# Answer\n4", 2),
    ("```\nprint(4)\n```", 1),
    ("4.", 1),
    ("4. That is it.", 2),
    # rule 9: Markdown emphasis
    ("**Yes.** It is.", 2),
    ("The answer is **4**.", 1),
    ("**4**", 1),
    ("_Sure._ Here it is.", 2),
]


@pytest.mark.parametrize(("text", "sentences"), SENTENCES, ids=[repr(t) for t, _ in SENTENCES])
def test_count_sentences(text: str, sentences: int) -> None:
    assert count_sentences(text) == sentences


def test_the_sentence_rule_is_documented_as_numbered_points() -> None:
    doc = novabench.analysis.checks.__doc__ or ""
    for number in range(1, 10):
        assert f"\n{number}. " in doc


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", 0),
        ("four", 1),
        ("2+2=4", 1),
        ("Hello , world", 2),
        ("- item **bold** —", 2),
        ("It's a state-of-the-art model.", 4),
        ("one\ntwo\tthree", 3),
    ],
)
def test_count_words(text: str, words: int) -> None:
    assert count_words(text) == words


# --- each check -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checks", "text", "passed"),
    [
        ({"contains": "4"}, "2+2 is 4.", True),
        ({"contains": "4"}, "2+2 is four.", False),
        ({"contains": ["4", "four"]}, "4, or four.", True),
        ({"contains": ["4", "four"]}, "It is 4.", False),
        ({"not_contains": ["5", "five"]}, "It is 4.", True),
        ({"not_contains": ["5", "five"]}, "It is Five.", False),
        ({"not_contains": "5"}, "It is 15.", False),  # plain substrings, not words
        ({"equals": "4"}, "  4\n", True),
        ({"equals": "4"}, "4.", False),
        ({"equals": " Paris "}, "paris", True),
        ({"regex": r"\b4\b"}, "It is 4.", True),
        ({"regex": r"\b4\b"}, "It is 14.", False),
        ({"regex": "^four"}, "Four", False),  # the pattern is used as written
        ({"regex": "(?i)^four"}, "Four", True),
        ({"min_words": 2}, "It is.", True),
        ({"min_words": 2}, "Yes.", False),
        ({"max_words": 3}, "It is 4.", True),
        ({"max_words": 3}, "It is clearly 4.", False),
        ({"max_sentences": 1}, "2+2=4.", True),
        ({"max_sentences": 1}, "It is 4. Easy.", False),
        ({"max_sentences": 0}, "", True),
        ({"json": True}, '{"answer": 4}', True),
        ({"json": True}, "4", True),
        ({"json": True}, "The answer is 4.", False),
        ({"json": True}, "", False),
        ({"json": True}, "NaN", False),
        ({"json": True}, '```json\n{"answer": 4}\n```', True),
        ({"json": True}, "  ```\n[1, 2]\n```  ", True),
        ({"json": True}, 'Here: ```json\n{"answer": 4}\n```', False),
    ],
)
def test_each_check_passes_and_fails(checks: dict[str, Any], text: str, passed: bool) -> None:
    spec = Checks.model_validate(checks)
    (name,) = spec.declared
    assert evaluate(spec, text) == {name: passed}


@pytest.mark.parametrize(
    ("checks", "text", "passed"),
    [
        ({"contains": "Paris"}, "PARIS!", True),
        ({"contains": "Paris", "case_sensitive": True}, "PARIS!", False),
        ({"contains": "Paris", "case_sensitive": True}, "Paris!", True),
        ({"contains": "straße"}, "STRASSE", True),  # case-folded, not just lowercased
        ({"contains": "café"}, "CAFE\u0301", True),  # NFC: an accent may be a separate character
        ({"not_contains": "five"}, "FIVE", False),
        ({"not_contains": "five", "case_sensitive": True}, "FIVE", True),
        ({"equals": "Four"}, "four", True),
        ({"equals": "Four", "case_sensitive": True}, "four", False),
    ],
)
def test_case_sensitivity(checks: dict[str, Any], text: str, passed: bool) -> None:
    spec = Checks.model_validate(checks)
    assert all(evaluate(spec, text).values()) is passed


ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ('{"answer": 4}', True),
        ('```json\n{"answer": 4}\n```', True),
        ('{"answer": "4"}', False),
        ('{"answer": 4, "why": "maths"}', False),
        ("{}", False),
        ("[4]", False),
        ("answer: 4", False),
    ],
)
def test_json_with_a_schema(text: str, passed: bool) -> None:
    spec = Checks.model_validate({"json": {"schema": ANSWER_SCHEMA}})
    assert evaluate(spec, text) == {"json": passed}


def test_json_schema_refs_within_the_schema_resolve() -> None:
    schema = {
        "$defs": {"answer": {"type": "integer", "minimum": 0}},
        "type": "object",
        "properties": {"answer": {"$ref": "#/$defs/answer"}},
    }
    spec = Checks.model_validate({"json": {"schema": schema}})
    assert evaluate(spec, '{"answer": 4}') == {"json": True}
    assert evaluate(spec, '{"answer": -4}') == {"json": False}


def test_a_remote_ref_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    # The loader refuses such a schema; were one to get through, it fails instead of fetching.
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("fetched a remote schema")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    unchecked = JsonCheck.model_construct(json_schema={"$ref": "https://example.com/a.json"})
    spec = Checks.model_construct(json_=unchecked)
    assert evaluate(spec, '{"answer": 4}') == {"json": False}


def test_json_schema_draft_follows_its_dollar_schema() -> None:
    # Draft 4's exclusiveMaximum is a boolean next to maximum; in 2020-12 it is a number.
    draft4 = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "maximum": 4,
        "exclusiveMaximum": True,
    }
    spec = Checks.model_validate({"json": {"schema": draft4}})
    assert evaluate(spec, "3") == {"json": True}
    assert evaluate(spec, "4") == {"json": False}


def test_json_true_and_an_empty_mapping_only_parse() -> None:
    assert Checks.model_validate({"json": True}).json_ == JsonCheck()
    assert Checks.model_validate({"json": {}}).json_ == JsonCheck()
    assert Checks.model_validate({"json": False}).json_ is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```JSON\n{"a": 1}```', {"a": 1}),
        ("```\n[true, null]\n```", [True, None]),
        ("\n  42  \n", 42),
    ],
)
def test_parse_json_unwraps_one_fenced_block(text: str, value: Any) -> None:
    assert parse_json(text) == (True, value)


@pytest.mark.parametrize(
    "text",
    ["", "Infinity", '{"a": NaN}', "```python\n[1]\n```", '{"a": 1} and more', "[" * 100_000],
)
def test_parse_json_refuses_what_is_not_strict_json(text: str) -> None:
    assert parse_json(text) == (False, None)


def test_evaluate_reports_every_declared_check_in_schema_order() -> None:
    spec = Checks.model_validate(
        {
            "json": True,
            "max_sentences": 1,
            "contains": "4",
            "not_contains": ["5", "five"],
            "min_words": 1,
            "max_words": 30,
            "regex": r"\b4\b",
            "equals": "4",
            "case_sensitive": True,
        }
    )
    assert evaluate(spec, "4") == {
        "contains": True,
        "not_contains": True,
        "equals": True,
        "regex": True,
        "min_words": True,
        "max_words": True,
        "max_sentences": True,
        "json": True,
    }
    assert list(evaluate(spec, "It is 5. Really.")) == spec.declared
    assert evaluate(spec, "It is 5. Really.") == {
        "contains": False,
        "not_contains": False,
        "equals": False,
        "regex": False,
        "min_words": True,
        "max_words": True,
        "max_sentences": False,
        "json": False,
    }


def test_no_declared_check_gives_no_results() -> None:
    assert evaluate(Checks(case_sensitive=True), "anything") == {}
    assert describe(Checks()) == []


# --- linear time, and the same answers as before ------------------------------------------------

# Pieces of sentence-rich text: marks, quotes, brackets, emphasis, abbreviations, initials, list
# markers, line breaks, and words that do or do not open sentences.
SENTENCE_PIECES = [
    *"aZxI4 .!?…。！？\"'“”‘’«»()[]{}*_`~¿¡-#>",
    "  ", "\t", "\n", "\r\n", "\n\n", "...", "?!", "**", "🙂", "3.5", "2+2=4.", "ß",
    "Dr.", "e.g.", "i.e.", "U.S.", "J.", "K.", "C.", "No.", "Jan.", "approx.", "etc.", "v.", "c.",
    "p.m.", "Jr.", "The", "It", "I", "I'm", "I’ll", "it", "he", "Paris", "George", "Smith",
    "- ", "* ", "• ", "# ", "> ", "1. ", "2) ", "12.", "https://x.io/a.b", "jo@x.io",
]  # fmt: skip
# Whole words with what may end them, so that rules reading the words around a mark (4 to 7) meet
# the neighbours they are about: "vitamin C. Paris", "George W. Bush", "the U.S. It".
SENTENCE_WORDS = [
    "a", "vitamin", "is", "it", "George", "Paris", "Bush", "The", "It", "I", "I'm", "No", "Dr",
    "e.g", "U.S", "J", "W", "C", "Jan", "approx", "etc", "v", "c", "p", "4", "12", "3.5", "🙂",
    "**Yes", "(See", '"Hi', "- one", "1.",
]  # fmt: skip
ENDINGS = ["", "", ".", ".", "!", "?", "...", "…", '."', ".)", ".**", "。", ",", ":"]
SEPARATORS = [" ", " ", " ", "  ", "\n", "\n\n"]
sentence_texts = st.one_of(
    st.lists(st.sampled_from(SENTENCE_PIECES), max_size=40).map("".join),
    st.lists(
        st.tuples(
            st.sampled_from(SENTENCE_WORDS), st.sampled_from(ENDINGS), st.sampled_from(SEPARATORS)
        ).map("".join),
        max_size=20,
    ).map("".join),
    st.text(alphabet='aZI4 .!?…。"”)(*\n\t', max_size=60),
)


@settings(max_examples=3000, deadline=None)
@given(sentence_texts)
def test_count_sentences_agrees_with_the_quadratic_original(text: str) -> None:
    assert count_sentences(text) == old_count_sentences(text)


@settings(max_examples=500, deadline=None)
@given(sentence_texts)
def test_count_words_agrees_with_the_original(text: str) -> None:
    assert count_words(text) == old_count_words(text)


_OLD_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n(?P<body>.*?)\n?[ \t]*```", re.DOTALL | re.I)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["```", "`", "json", "JSON", " ", "\t", "\n", "{}", "1", "x"])))
def test_fence_unwrapping_agrees_with_the_backtracking_pattern(pieces: list[str]) -> None:
    payload = "".join(pieces).strip()
    fenced = _OLD_FENCE.fullmatch(payload)
    assert novabench.analysis.checks._unfenced(payload) == (
        fenced.group("body") if fenced else payload
    )


def _cpu_s(work: Callable[[str], object], text: str) -> float:
    """CPU seconds of this thread for `work(text)`, the least of three tries: other processes on
    the machine do not count, and neither do this thread's unlucky moments."""
    spent = []
    for _ in range(3):
        started = time.thread_time()
        work(text)
        spent.append(time.thread_time() - started)
    return min(spent)


LINEAR_WORK: list[tuple[str, Callable[[str], object], str]] = [
    ("sentence ends", count_sentences, "Yes. No! Why? Wait… Sure. "),
    ("initials", count_sentences, "J. K. "),
    ("abbreviations", count_sentences, "Dr. e.g. U.S. It "),
    ("a run of dots", count_sentences, "...................................x"),
    ("wide marks", count_sentences, "你好。我"),
    ("quotes and brackets", count_sentences, '"(Hi.)" '),
    ("words", count_words, "word - ** "),
    ("a fence with spaces", parse_json, "```\n" + " " * 200),
]


@pytest.mark.parametrize(
    ("work", "unit"), [(w, u) for _, w, u in LINEAR_WORK], ids=[i for i, _, _ in LINEAR_WORK]
)
def test_twice_the_text_costs_about_twice_the_work(
    work: Callable[[str], object], unit: str
) -> None:
    # 100,000 characters take tens of milliseconds; a quadratic algorithm costs four times as
    # much for twice the text, a linear one twice: 3 keeps well clear of both.
    text = unit * (100_000 // len(unit))
    assert _cpu_s(work, text + text) < 3 * _cpu_s(work, text) + 0.01


def test_a_megabyte_of_sentence_marks_is_counted_in_seconds() -> None:
    # The old count took 17 s for 208 KB of this (minutes for a megabyte); now about a second.
    text = ("Yes. No! Why? J. K. Dr. Smith… " * 40_000)[:MAX_CHECKED_CHARS]
    started = time.thread_time()
    assert count_sentences(text) > 100_000
    assert time.thread_time() - started < 30


def test_an_answer_over_the_limit_fails_every_check_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = Checks.model_validate(
        {"contains": "a", "regex": "a", "max_words": 10**9, "max_sentences": 10**9, "json": True}
    )
    at_limit = "[" + '"a", ' * ((MAX_CHECKED_CHARS - 6) // 5) + '"a"]'
    at_limit += " " * (MAX_CHECKED_CHARS - len(at_limit))
    assert len(at_limit) == MAX_CHECKED_CHARS
    assert evaluate(spec, at_limit) == dict.fromkeys(spec.declared, True)

    def unread(text: str) -> int:
        raise AssertionError("an answer over the limit was read")

    monkeypatch.setattr(novabench.analysis.checks, "count_sentences", unread)
    monkeypatch.setattr(novabench.analysis.checks, "count_words", unread)
    monkeypatch.setattr(novabench.analysis.checks, "parse_json", unread)
    assert evaluate(spec, at_limit + " ") == dict.fromkeys(spec.declared, False)


# --- the reference for the property tests above: the sentence count before it was made linear --
# Kept as it was: quadratic, since each sentence mark split the rest of its line and all before it.

_OLD_OPENERS = "\"'“‘«([{*_`~¿¡"
_OLD_CLOSERS = "\"'”’»)]}*_`~"
_OLD_WIDE_ENDS = "。！？"  # CJK sentence marks: no space follows them
_OLD_SENTENCE_END = re.compile(
    rf"[.!?…{_OLD_WIDE_ENDS}]+[{re.escape(_OLD_CLOSERS)}]*(?=\s|$)"
    rf"|[{_OLD_WIDE_ENDS}]+[{re.escape(_OLD_CLOSERS)}]*"
)
_OLD_BULLET = re.compile(r"[ \t]*(?:[-*+•‣◦▪>#]+[ \t]+)+")
_OLD_LIST_NUMBER = re.compile(r"[ \t]*\d{1,3}[.)][ \t]+(?=\S)")
_OLD_INITIAL = re.compile(r"[A-Z]")
_OLD_NEXT_INITIAL = re.compile(r"[A-Z]\.")
_OLD_DOTTED_CAPITALS = re.compile(r"(?:[A-Z]\.)+[A-Z]")
_OLD_CAPITALISED = re.compile(r"[A-Z][\w'’-]*")
_OLD_PRONOUN_I = re.compile(r"I(?:['’](?:m|ll|ve|d))?")


def _old_word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_OLD_NEVER_END = _old_word_set(
    "mr mrs ms mx dr prof st mt rev fr gen col capt lt sgt gov sen hon pres e.g i.e cf viz vs "
    "v approx ca esp incl excl resp a.k.a"
)
_OLD_BEFORE_NUMBER = _old_word_set(
    "no nos nr vol fig figs eq eqs ch sec art c p pp ver jan feb mar apr jun jul aug sep sept "
    "oct nov dec"
)
# Words that start sentences and are not surnames: after "C." or "U.S." they mean a new sentence.
_OLD_OPENER_WORDS = _old_word_set(
    "a an the this that these those it its it's i i'm i'll i've i'd he she we they you there "
    "here my our your his her their what which who when where why how but and or so yes no if "
    "in on at as for from to with after before then also however because"
)


def old_count_sentences(text: str) -> int:
    lines = [line for line in text.splitlines() if _old_has_word_character(line)]
    many_lines = len(lines) > 1
    return sum(_old_sentences_in_line(_old_strip_list_marker(line, many_lines)) for line in lines)


def old_count_words(text: str) -> int:
    return sum(1 for piece in text.split() if _old_has_word_character(piece))


def _old_has_word_character(text: str) -> bool:
    return any(character.isalnum() for character in text)


def _old_strip_list_marker(line: str, many_lines: bool) -> str:
    if bullet := _OLD_BULLET.match(line):
        line = line[bullet.end() :]
    if many_lines and (number := _OLD_LIST_NUMBER.match(line)):
        line = line[number.end() :]
    return line


def _old_sentences_in_line(line: str) -> int:
    count, start = 0, 0
    for end in _OLD_SENTENCE_END.finditer(line):
        if _old_ends_sentence(line, end):
            count += _old_has_word_character(line[start : end.end()])
            start = end.end()
    return count + _old_has_word_character(line[start:])


def _old_ends_sentence(line: str, end: re.Match[str]) -> bool:
    marks = end.group().rstrip(_OLD_CLOSERS)
    following = line[end.end() :].split(maxsplit=1)
    if not following or any(mark in _OLD_WIDE_ENDS for mark in marks):
        return True
    next_word = following[0].lstrip(_OLD_OPENERS)
    first = next_word[:1]
    if first.islower():  # rule 4
        return False
    if marks != "." and set(marks) <= {".", "…"}:  # an ellipsis, rule 5
        return first.isupper() and not _OLD_PRONOUN_I.fullmatch(next_word.rstrip(",;:.!?…"))
    if marks != ".":
        return True
    words_before = line[: end.start()].split()
    word = words_before[-1].strip(_OLD_OPENERS + _OLD_CLOSERS) if words_before else ""
    key = word if len(word) == 1 else word.lower()  # "v." and "c." are not "V." and "C."
    if key in _OLD_NEVER_END or (key in _OLD_BEFORE_NUMBER and first.isdigit()):
        return False  # rule 6
    opens_sentence = next_word.rstrip(",;:.!?…").lower().replace("’", "'") in _OLD_OPENER_WORDS
    if _OLD_DOTTED_CAPITALS.fullmatch(word):  # rule 7
        return opens_sentence
    if _OLD_INITIAL.fullmatch(word) and first.isupper():
        if _OLD_NEXT_INITIAL.fullmatch(next_word.rstrip(_OLD_CLOSERS)):
            return False
        previous = (
            words_before[-2].strip(_OLD_OPENERS + _OLD_CLOSERS) if len(words_before) > 1 else ""
        )
        after_name = not previous or previous[-1] in ".!?…" or _OLD_CAPITALISED.fullmatch(previous)
        return not after_name or opens_sentence
    return True
