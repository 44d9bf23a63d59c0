"""The strict scalar types of suite fields: YAML already types its scalars, so `true` must not
pass as 1 and "3" not as 3."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Strict

# Strict: YAML already types its scalars, so `true` must not pass as 1 and "3" not as 3.
Int = Annotated[int, Strict()]


Float = Annotated[float, Strict()]  # strict float still takes ints: `temperature: 0`


Bool = Annotated[bool, Strict()]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty: it must have some text")
    return value


Text = Annotated[str, Strict()]


NonBlankText = Annotated[str, Strict(), AfterValidator(_not_blank)]
