"""Domain errors raised by services; `autopack_site.api` maps each to one HTTP status (STATUS_FOR_ERROR)."""


class DomainError(Exception):
    def __init__(self, message: str, details: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(DomainError):
    """The request is malformed or breaks a rule of the payload."""


class NotFound(DomainError):
    """The run or phase named does not exist."""


class Conflict(DomainError):
    """The request is valid but clashes with what is stored (duplicate id, illegal move)."""


CONFIG_BROKEN = "config/models.yaml has problems; fix them and retry"


class ConfigError(DomainError):
    """models.yaml cannot be used; `problems` lists (key path, reason). Routing is down until it is fixed."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        super().__init__(CONFIG_BROKEN, dict(problems))
        self.source = source
        self.problems = problems

    def __str__(self):
        return f"{self.source}: " + "; ".join(f"{path}: {reason}" for path, reason in self.problems)
