"""Loosely typed values (spreadsheet cells, JSON, command-line text) checked into numbers and choices.

Excel hands numbers over as floats and TRUE/FALSE as bools, which ``float()`` would quietly take as 1 and 0;
an empty cell arrives as None or "". Every check here refuses those with a message that says what was
expected and what came, e.g. ``epochs must be a whole number, got 'three'``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def as_number(value: Any, must_be: str) -> float:
    """A value as a float; a bool, text or empty value raises ValueError("<must_be>, got <value>")."""
    if isinstance(value, bool):
        raise ValueError(f"{must_be}, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{must_be}, got {value!r}") from None


def as_whole(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number within [minimum, maximum] (3.0 from a cell is 3; 2.5, NaN and text are refused)."""
    number = as_number(value, f"{name} must be a whole number")
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    _check_bounds(number, name, minimum, maximum, f"{int(number):,}")
    return int(number)


def as_real(
    value: Any,
    name: str,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> float:
    """A finite number within [minimum, maximum]; ``positive`` also refuses 0."""
    must_be = f"{name} must be a {'positive ' if positive else ''}number"
    number = as_number(value, must_be)
    if not math.isfinite(number) or (positive and number <= 0):
        raise ValueError(f"{name} must be a {'positive ' if positive else ''}finite number, got {value!r}")
    _check_bounds(number, name, minimum, maximum, f"{number:g}")
    return number


def _check_bounds(number: float, name: str, minimum, maximum, shown: str) -> None:
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be at least {minimum:,}, got {shown}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {shown}")


def as_choice(value: Any, name: str, choices: Iterable[str], shown: Iterable[str] | None = None) -> str:
    """One of ``choices``, compared without case and surrounding spaces; the error lists ``shown`` (default:
    the choices; a caller that also accepts other forms, such as cuda:N, names them there)."""
    choices = tuple(choices)
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in choices:
        raise ValueError(f"{name} must be one of {', '.join(shown or choices)}; got {value!r}")
    return text


def as_flag(value: Any, name: str) -> bool:
    """A yes/no value: a bool, or the text true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int | float) else None
    if text in ("true", "yes", "on", "1", "1.0"):
        return True
    if text in ("false", "no", "off", "0", "0.0"):
        return False
    raise ValueError(f"{name} must be yes or no (TRUE/FALSE), got {value!r}")


def as_text(value: Any, name: str, max_length: int = 4096) -> str:
    """Text (a number is refused: a folder named 3.0 is surely a slip), stripped, of bounded length."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {value!r}")
    text = value.strip()
    if len(text) > max_length:
        raise ValueError(f"{name} is too long ({len(text):,} characters; at most {max_length:,})")
    if "\x00" in text:
        raise ValueError(f"{name} must not contain a NUL character")
    return text
