"""Response quality checks: does an answer say what it should, in the shape it should?

A prompt's `checks` (merged over the suite's, see `Suite.checks_for`) are evaluated on the
response text; each declared check passes or fails on its own.

- `contains` / `not_contains`: every string must appear / none may appear, as plain substrings
  ("5" is found in "15"; use `regex` with `\\b` for whole words).
- `equals`: the whole response, stripped of surrounding whitespace, equals the string (also
  stripped); "4." does not equal "4".
- `case_sensitive` (default false) applies to those three; both sides are NFC-normalised, and
  without case sensitivity compared case-folded ("Straße" contains "STRASSE").
- `regex`: `re.search` must find the pattern, exactly as written: add `(?i)` to ignore case,
  `(?m)` for `^`/`$` at line ends.
- `min_words` / `max_words`: words are the whitespace-separated pieces of text that hold a letter
  or a digit ("2+2=4" is one word, a lone "-" or "**" none); text without spaces (Chinese,
  Japanese) is not split into words.
- `max_sentences`: counted by the sentence rule below.
- `json: true`: the response parses as strict JSON (no NaN or Infinity). A response that is one
  fenced code block (```` ```json ```` or a bare ```` ``` ```` fence) is unwrapped first, since
  models often fence JSON even when asked not to. `json: {schema: {...}}` also validates the
  parsed value against that JSON Schema: Draft 2020-12 unless its `$schema` names another
  draft; `format` is an annotation only (not checked); `$ref` must resolve inside the schema,
  nothing is fetched.

Limits. An answer longer than 1,000,000 characters (`MAX_CHECKED_CHARS`, some 250,000 tokens) is
not read: every declared check of it fails, as too long to check. An answer that long is a
runaway generation rather than an answer, and although every check here takes time linear in
the text, a megabyte full of sentence marks already costs about a second of CPU. `regex` and
`json: {schema: ...}` run patterns the suite's author wrote, which Python's `re` may take
exponential time over (and holds the interpreter meanwhile), so they run in a child process and
fail when one answer takes them longer than 10 s (`PATTERN_TIME_LIMIT_S`).

Sentences (`count_sentences`):

1. Empty or blank text has 0 sentences. A piece of text counts as a sentence only if it holds at
   least one letter or digit, so a line or tail of only symbols or emoji ("---", "```", "🙂")
   adds none: "Fine, thanks! 🙂" is one sentence.
2. A line break between non-empty lines always ends a sentence: a bulleted or numbered list, a
   heading over a paragraph, or one sentence wrapped onto two lines counts as several, since a
   model that answers with a list has not answered in one sentence. Blank lines are ignored. At
   the start of a line, bullet, heading and quote markers ("- ", "* ", "• ", "# ", "> ") are
   skipped, and so are list numbers ("1. ", "2) ") when the text has more than one non-empty
   line ("1. Paris" on its own is two sentences: "1." and "Paris").
3. Within a line, a sentence ends at a run of ".", "!", "?" or "…" ("?!", "!!!" and "..." are one
   end), optionally followed by closing quotes, brackets or Markdown emphasis (`."`, `.)`,
   `.**`), and then a space or the end of the line. A mark followed by anything else ends
   nothing, so "2+2=4.", "3.5", "v0.12.6", "example.com/a.b", "jo@example.com" and "e.g.," are
   not split. "。", "！" and "？" end a sentence even with no space after them.
4. Nothing ends before a word that starts with a lowercase letter (after any opening quote,
   bracket or emphasis): '"Hi!" she said.', "It costs approx. five euros." and "apples, pears,
   etc. are fruit" are one sentence each.
5. An ellipsis ("..." or "…") ends a sentence only before a capitalised word other than "I"
   (I'm, I'll, I've, I'd): "Well... I think so." and "Wait… 4 is right." are one sentence,
   "I waited... Nothing happened." is two.
6. These abbreviations never end a sentence: Mr., Mrs., Ms., Mx., Dr., Prof., St., Mt., Rev.,
   Fr., Gen., Col., Capt., Lt., Sgt., Gov., Sen., Hon., Pres., e.g., i.e., cf., viz., vs., v.,
   approx., ca., esp., incl., excl., resp. and a.k.a. Before a number, neither do No., Nos.,
   Nr., Vol., Fig., Eq., Ch., Sec., Art., c., p., pp., Ver. and the months Jan. to Dec.
   ("No. 5", "Jan. 12", "c. 1900"); "No. It is not." is two sentences. Any other abbreviation
   (etc., Inc., Jr., a.m.) follows rules 3 and 4: it ends a sentence before a capitalised word
   ("apples, pears, etc. The end." is two).
7. Initials: a single capital letter with a full stop does not end a sentence when another
   initial follows ("J. K. Rowling"), nor when it starts the sentence or follows a capitalised
   word and the next word is not a common sentence opener such as The, It, This, I or He
   ("George W. Bush was ..." is one sentence; "Take vitamin C. It helps." and "The answer is
   B. It is even." are two). Dotted capitals (U.S., J.R.R., D.C.) end a sentence only before such
   an opener: "The U.S. President" is one, "I live in the U.S. It is big." two.
8. Whatever follows the last sentence end counts as a sentence if it holds a letter or a digit,
   so a final sentence needs no full stop: "Hi" is one sentence, "Hi. How are you" two.
9. Markdown emphasis does not matter: "**Yes.** It is." is two sentences, "It is **4**." one.
   URLs and e-mail addresses split nothing unless a sentence mark and a space follow them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from novabench.config.suite import Checks

JsonPath = tuple[str | int, ...]

# Longer answers are not read by the checks (see the module docstring): a runaway generation is
# not an answer, and reading it would cost the run time and memory that nothing else bounds.
MAX_CHECKED_CHARS = 1_000_000
# A `regex` check, or a `json` check with a schema, that takes longer than this on one answer fails.
PATTERN_TIME_LIMIT_S = 10.0

# --- sentences and words --------------------------------------------------------------------

_OPENERS = "\"'“‘«([{*_`~¿¡"
_CLOSERS = "\"'”’»)]}*_`~"
_MARKS = ".!?…"
_WIDE_ENDS = "。！？"  # CJK sentence marks: no space follows them
# Possessive quantifiers and the look-behind keep this linear: a run of marks is tried once, at
# its start, so "......x" costs its length, not its length squared.
_SENTENCE_END = re.compile(
    rf"(?<![{_MARKS}{_WIDE_ENDS}])[{_MARKS}{_WIDE_ENDS}]++[{re.escape(_CLOSERS)}]*+(?=\s|$)"
    rf"|[{_WIDE_ENDS}]++[{re.escape(_CLOSERS)}]*+"
)
_WORD = re.compile(r"\S+")
_NEXT_WORD = re.compile(r"\s*+(\S*+)")
_WORD_CHARACTER = re.compile(r"[^\W_]")  # what str.isalnum() accepts: a letter or a digit
_BULLET = re.compile(r"[ \t]*(?:[-*+•‣◦▪>#]+[ \t]+)+")
_LIST_NUMBER = re.compile(r"[ \t]*\d{1,3}[.)][ \t]+(?=\S)")
_INITIAL = re.compile(r"[A-Z]")
_NEXT_INITIAL = re.compile(r"[A-Z]\.")
_DOTTED_CAPITALS = re.compile(r"(?:[A-Z]\.)+[A-Z]")  # "U.S" of "U.S.": the last dot is the mark
_CAPITALISED = re.compile(r"[A-Z][\w'’-]*")
_PRONOUN_I = re.compile(r"I(?:['’](?:m|ll|ve|d))?")


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NEVER_END = _word_set(
    "mr mrs ms mx dr prof st mt rev fr gen col capt lt sgt gov sen hon pres e.g i.e cf viz vs "
    "v approx ca esp incl excl resp a.k.a"
)
_BEFORE_NUMBER = _word_set(
    "no nos nr vol fig figs eq eqs ch sec art c p pp ver jan feb mar apr jun jul aug sep sept "
    "oct nov dec"
)
# Words that start sentences and are not surnames: after "C." or "U.S." they mean a new sentence.
_OPENER_WORDS = _word_set(
    "a an the this that these those it its it's i i'm i'll i've i'd he she we they you there "
    "here my our your his her their what which who when where why how but and or so yes no if "
    "in on at as for from to with after before then also however because"
)


def count_sentences(text: str) -> int:
    """The number of sentences in `text`, by the rule in this module's docstring."""
    lines = [line for line in text.splitlines() if _has_word_character(line)]
    many_lines = len(lines) > 1
    return sum(_sentences_in_line(_strip_list_marker(line, many_lines)) for line in lines)


def count_words(text: str) -> int:
    """Whitespace-separated pieces of `text` holding a letter or a digit."""
    return sum(1 for piece in _WORD.finditer(text) if _WORD_CHARACTER.search(piece.group()))


def _has_word_character(text: str, start: int = 0, end: int | None = None) -> bool:
    return _WORD_CHARACTER.search(text, start, len(text) if end is None else end) is not None


def _strip_list_marker(line: str, many_lines: bool) -> str:
    if bullet := _BULLET.match(line):
        line = line[bullet.end() :]
    if many_lines and (number := _LIST_NUMBER.match(line)):
        line = line[number.end() :]
    return line


class _WordsBefore:
    """The last two words before a position of one line, for positions that only move forward.

    What `line[:position].split()[-2:]` gives, in time linear in the line over all positions:
    each word is found once, however many sentence marks ask about it.
    """

    def __init__(self, line: str) -> None:
        self._line = line
        self._words = _WORD.finditer(line)
        self._upcoming = next(self._words, None)
        self._last: re.Match[str] | None = None
        self._second_last: re.Match[str] | None = None

    def at(self, position: int) -> tuple[str, str]:
        """(the word before `position`, cut there; the word before that), "" where none."""
        while self._upcoming is not None and self._upcoming.start() < position:
            self._second_last, self._last = self._last, self._upcoming
            self._upcoming = next(self._words, None)
        if self._last is None:
            return "", ""
        word = self._line[self._last.start() : min(self._last.end(), position)]
        return word, self._second_last.group() if self._second_last is not None else ""


def _sentences_in_line(line: str) -> int:
    count, start = 0, 0
    words_before = _WordsBefore(line)
    for end in _SENTENCE_END.finditer(line):
        if _ends_sentence(line, end, words_before):
            count += _has_word_character(line, start, end.end())
            start = end.end()
    return count + _has_word_character(line, start)


def _ends_sentence(line: str, end: re.Match[str], words_before: _WordsBefore) -> bool:
    marks = end.group().rstrip(_CLOSERS)
    if any(mark in _WIDE_ENDS for mark in marks):
        return True
    # Only the word after the mark is read (not the rest of the line): what keeps this linear.
    following = _NEXT_WORD.match(line, end.end())
    if following is None or not following.group(1):
        return True
    next_word = following.group(1).lstrip(_OPENERS)
    first = next_word[:1]
    if first.islower():  # rule 4
        return False
    if marks != "." and set(marks) <= {".", "…"}:  # an ellipsis, rule 5
        return first.isupper() and not _PRONOUN_I.fullmatch(next_word.rstrip(",;:.!?…"))
    if marks != ".":
        return True
    word_before, second_before = words_before.at(end.start())
    word = word_before.strip(_OPENERS + _CLOSERS)
    key = word if len(word) == 1 else word.lower()  # "v." and "c." are not "V." and "C."
    if key in _NEVER_END or (key in _BEFORE_NUMBER and first.isdigit()):
        return False  # rule 6
    opens_sentence = next_word.rstrip(",;:.!?…").lower().replace("’", "'") in _OPENER_WORDS
    if _DOTTED_CAPITALS.fullmatch(word):  # rule 7
        return opens_sentence
    if _INITIAL.fullmatch(word) and first.isupper():
        if _NEXT_INITIAL.fullmatch(next_word.rstrip(_CLOSERS)):
            return False
        previous = second_before.strip(_OPENERS + _CLOSERS)
        after_name = not previous or previous[-1] in ".!?…" or _CAPITALISED.fullmatch(previous)
        return not after_name or opens_sentence
    return True


# --- JSON -----------------------------------------------------------------------------------

# jsonschema and referencing are imported where used: they take longer to import than the rest of
# the suite loader, and only suites with a `json: {schema: ...}` check need them.

# The opening line of a fence; its body and closing are found with string methods, since a
# pattern like `(?P<body>.*?)\n?[ \t]*```` backtracks quadratically over a run of spaces.
_FENCE_OPENING = re.compile(r"```[ \t]*+(?:json)?[ \t]*+\n", re.I)
_FENCE = "```"


def parse_json(text: str) -> tuple[bool, Any]:
    """(True, value) if `text`, or the one fenced code block it consists of, is strict JSON."""
    payload = _unfenced(text.strip())
    try:
        return True, json.loads(payload, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return False, None


def _unfenced(payload: str) -> str:
    """The body of the one fenced code block `payload` consists of, else `payload` itself."""
    opening = _FENCE_OPENING.match(payload)
    if opening is None or not payload.endswith(_FENCE) or len(payload) - 3 < opening.end():
        return payload
    body = payload[opening.end() : -3].rstrip(" \t")
    return body[:-1] if body.endswith("\n") else body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _matches_schema(schema: dict[str, Any], value: Any) -> bool:
    import jsonschema
    import referencing
    import referencing.exceptions

    from novabench.config.checks import schema_validator_class

    validator_class = schema_validator_class(schema) or jsonschema.Draft202012Validator
    # An empty registry: a $ref outside the schema fails rather than being fetched (jsonschema's
    # default fetches it over HTTP); load-time checks make that rare.
    validator = validator_class(schema, registry=referencing.Registry())
    try:
        return bool(validator.is_valid(value))
    except (RecursionError, referencing.exceptions.Unresolvable):
        return False


# --- evaluating and describing --------------------------------------------------------------


def evaluate(checks: Checks, text: str) -> dict[str, bool]:
    """Whether `text` passes each declared check, keyed by check name in `Checks.declared` order.

    An answer longer than MAX_CHECKED_CHARS fails every declared check without being read.
    """
    if len(text) > MAX_CHECKED_CHARS:
        return dict.fromkeys(checks.declared, False)
    fold = _folder(checks.case_sensitive)
    searched = checks.contains is not None or checks.not_contains is not None
    response = fold(text) if searched else ""
    passed: dict[str, bool] = {}
    if checks.contains is not None:
        passed["contains"] = all(fold(part) in response for part in checks.contains)
    if checks.not_contains is not None:
        passed["not_contains"] = not any(fold(part) in response for part in checks.not_contains)
    if checks.equals is not None:
        passed["equals"] = fold(text.strip()) == fold(checks.equals.strip())
    if checks.regex is not None:
        passed["regex"] = matches_regex(checks.regex, text)
    if checks.min_words is not None:
        passed["min_words"] = count_words(text) >= checks.min_words
    if checks.max_words is not None:
        passed["max_words"] = count_words(text) <= checks.max_words
    if checks.max_sentences is not None:
        passed["max_sentences"] = count_sentences(text) <= checks.max_sentences
    if checks.json_ is not None:
        passed["json"] = is_json(text, checks.json_.json_schema)
    return passed


def matches_regex(pattern: str, text: str) -> bool:
    """The `regex` check: `re.search` finds `pattern` in `text`."""
    return re.search(pattern, text) is not None


def is_json(text: str, schema: dict[str, Any] | None) -> bool:
    """The `json` check: `text` parses (see parse_json) and, given a schema, its value matches."""
    parsed, value = parse_json(text)
    return parsed and (schema is None or _matches_schema(schema, value))


def _folder(case_sensitive: bool) -> Callable[[str], str]:
    if case_sensitive:
        return lambda text: unicodedata.normalize("NFC", text)
    return lambda text: unicodedata.normalize("NFC", text).casefold()


__all__ = [
    "MAX_CHECKED_CHARS",
    "PATTERN_TIME_LIMIT_S",
    "count_sentences",
    "count_words",
    "evaluate",
    "is_json",
    "matches_regex",
    "parse_json",
]
