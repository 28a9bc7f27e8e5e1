"""Reading the query string: ids and numbers a database can hold, or a clear 400."""

from autopack_site.errors import InvalidInput


def query_id(request, name: str) -> str | None:
    """An id from the query string, or None when absent or one no database could hold (NUL, too long)."""
    value = request.GET.get(name) or None
    if value is None or "\x00" in value or len(value) > 200:
        return None
    return value


def query_int(request, name: str, *, default: int, maximum: int) -> int:
    """A positive integer from the query string; InvalidInput otherwise (without asking int() for 5,000 digits)."""
    raw = request.GET.get(name)
    if raw is None:
        return default
    # isascii: str.isdigit() also accepts digits such as "²" that int() refuses.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18) or not 1 <= int(raw) <= maximum:
        raise InvalidInput("Invalid query", {name: f"must be an integer from 1 to {maximum}"})
    return int(raw)
