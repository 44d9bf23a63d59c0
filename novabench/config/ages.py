"""Ages as a user writes them on the command line (`--older-than 90d`): whole hours, days or
weeks. Months and years are left out on purpose: their length varies, and a retention rule
should mean the same thing every time cron runs it."""

from __future__ import annotations

import re
from datetime import timedelta

AGE_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_AGE = re.compile(r"(\d{1,5})([hdw])")
AGE_FORMAT = "a whole number of hours, days or weeks: Nh, Nd or Nw (e.g. 36h, 90d, 2w)"


def parse_age(text: str) -> timedelta:
    """'90d' as 90 days; ValueError naming the value and what is allowed otherwise."""
    match = _AGE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not an age: give {AGE_FORMAT}")
    return int(match.group(1)) * AGE_UNITS[match.group(2)]


def age_text(age: timedelta) -> str:
    """An age as parse_age reads it back: the largest unit that divides it."""
    for unit, size in sorted(AGE_UNITS.items(), key=lambda item: -item[1]):
        if age % size == timedelta(0):
            return f"{age // size}{unit}"
    return f"{age.total_seconds():g}s"


# The prune command's option help, kept here with the ages so the CLI stays a list of commands.
OLDER_THAN_HELP = f"Runs started more than AGE ago: {AGE_FORMAT}."
KEEP_LAST_HELP = (
    "Keep the N newest runs of each suite; with --older-than, a run goes only if both say so."
)
KEEP_SUMMARIES_HELP = (
    "Delete only the raw rows (requests, resource samples): the run and its summaries stay, so "
    "its history lines do; its page too."
)
