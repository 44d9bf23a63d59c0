"""Response checks: sentence and word counts, every check passing and failing, `describe`."""

from __future__ import annotations

from typing import Any

import pytest

import novabench.checks
from novabench.checks import count_sentences, count_words, describe, evaluate, parse_json
from novabench.suite import Checks, JsonCheck

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
    doc = novabench.checks.__doc__ or ""
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


# --- describe -------------------------------------------------------------------------------------


def test_describe_gives_one_phrase_per_check_in_evaluate_order() -> None:
    spec = Checks.model_validate(
        {
            "contains": "4",
            "not_contains": ["5", "five"],
            "equals": "4",
            "regex": r"\b4\b",
            "min_words": 1,
            "max_words": 30,
            "max_sentences": 1,
            "json": True,
        }
    )
    assert describe(spec) == [
        "contains '4'",
        "does not contain '5' or 'five'",
        "equals '4'",
        r"matches /\b4\b/",
        "at least 1 word",
        "at most 30 words",
        "at most 1 sentence",
        "is JSON",
    ]


def test_describe_plurals_case_and_schema() -> None:
    spec = Checks.model_validate(
        {
            "contains": ["Paris", "France", "capital"],
            "case_sensitive": True,
            "min_words": 2,
            "max_sentences": 2,
            "json": {"schema": {"type": "string"}},
        }
    )
    assert describe(spec) == [
        "contains 'Paris', 'France' and 'capital' (case-sensitive)",
        "at least 2 words",
        "at most 2 sentences",
        "is JSON matching the schema",
    ]
