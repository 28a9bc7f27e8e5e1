"""Typed reading of JSON payloads that collects every problem under its field path."""

import re

from autopack_site.errors import InvalidInput

BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+-]*")
IDENTIFIER_RULE = "may hold only letters, digits and _ . : @ + - (not first)"
# Figures an executor reports are bounded so that the sums over a run's phases fit their columns.
MAX_TOKENS = 10**12
MAX_ISSUES = 100_000
MAX_PHASES = 10_000


class Fields:
    """Reads fields of one JSON object; problems are gathered in `errors`, keyed by path."""

    def __init__(self, data, path: str = "", errors: dict[str, str] | None = None):
        self.errors = {} if errors is None else errors
        self.path = path
        self.data = data if isinstance(data, dict) else {}
        if not isinstance(data, dict):
            self.errors[path or "body"] = "must be a JSON object"

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        default: str = "",
        max_length: int = 200,
        choices=None,
        identifier: bool = False,
    ) -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                self.errors[self._at(key)] = "is required"
            return default
        if not isinstance(value, str):
            self.errors[self._at(key)] = "must be a string"
            return default
        if required and not value.strip():
            self.errors[self._at(key)] = "may not be blank"
        elif len(value) > max_length:
            self.errors[self._at(key)] = f"may be at most {max_length} characters"
        elif choices is not None and value not in choices:
            self.errors[self._at(key)] = f"must be one of: {', '.join(choices)}"
        elif identifier and not IDENTIFIER.fullmatch(value):
            self.errors[self._at(key)] = IDENTIFIER_RULE
        return value

    def integer(self, key: str, *, required: bool = False, default=None, minimum: int = 0, maximum: int = BIGINT_MAX):
        value = self.data.get(key)
        if value is None:
            if required:
                self.errors[self._at(key)] = "is required"
            return default
        # bool is an int in Python; JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            self.errors[self._at(key)] = "must be an integer"
            return default
        if value < minimum:
            self.errors[self._at(key)] = f"must be at least {minimum}"
            return default
        if value > maximum:
            self.errors[self._at(key)] = f"must be at most {maximum}"
            return default
        return value

    def string_list(self, key: str, *, max_items: int = 100, max_length: int = 500) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.errors[self._at(key)] = "must be a list of strings"
            return []
        if len(value) > max_items:
            self.errors[self._at(key)] = f"may hold at most {max_items} items"
            return []
        if any(len(v) > max_length for v in value):
            self.errors[self._at(key)] = f"items may be at most {max_length} characters"
            return []
        return value

    def obj(self, key: str, *, required: bool = False) -> "Fields | None":
        value = self.data.get(key)
        if value is None:
            if required:
                self.errors[self._at(key)] = "is required"
            return None
        return Fields(value, self._at(key), self.errors)

    def objects(self, key: str, *, max_items: int = 10_000) -> list["Fields"]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.errors[self._at(key)] = "must be a list"
            return []
        if len(value) > max_items:
            self.errors[self._at(key)] = f"may hold at most {max_items} items"
            return []
        return [Fields(item, f"{self._at(key)}[{i}]", self.errors) for i, item in enumerate(value)]

    def raise_if_invalid(self, message: str) -> None:
        if self.errors:
            raise InvalidInput(message, dict(self.errors))
