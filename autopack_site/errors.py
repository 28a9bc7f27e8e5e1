"""Domain errors raised by services; `autopack_site.api` maps each to one HTTP status."""


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
