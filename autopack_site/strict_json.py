"""Strict JSON: what json.loads lets through but a request or a usage file may not carry.

Finite numbers only (no NaN, Infinity or 1e400), valid Unicode (no lone surrogates), no NUL (which no
database text holds), and bounded nesting. Used by the API's body parsing and by the usage file import.
"""

import json

from autopack_site.errors import InvalidInput

MAX_DEPTH = 32


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def check_strings(data) -> None:
    """Refuse what json.loads lets through but the database or later code cannot store."""
    stack = [(data, 1, "body")]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"JSON is nested deeper than {MAX_DEPTH} levels", {path: "too deep"})
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, path)
                stack.append((item, depth + 1, f"{path}.{key}"))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, path)


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise InvalidInput("Text may not contain NUL characters", {path: "contains NUL"})
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("Text contains a lone surrogate", {path: "not valid Unicode"}) from None


# One decoder for every request: json.loads with hooks would build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_json(raw: bytes):
    """Parse a request body as strict JSON: finite numbers, valid Unicode, bounded depth."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("Body is not valid UTF-8") from None
    try:
        data = _DECODER.decode(text)
    except RecursionError:
        raise InvalidInput(f"JSON is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise InvalidInput("Body is not valid JSON", {"body": str(exc)[:200]}) from None
    # Only a \u escape can smuggle in a NUL or a lone surrogate (raw ones are invalid UTF-8 or JSON),
    # and only that many brackets can nest that deep: most bodies skip the walk.
    if "\\u" in text or text.count("[") + text.count("{") > MAX_DEPTH:
        check_strings(data)
    return data
