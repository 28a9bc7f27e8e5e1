"""Limits under their former home; new code imports `autopack_site.limits`."""

from autopack_site.limits import BIGINT_MAX, IDENTIFIER, IDENTIFIER_RULE, INT_MAX, MAX_ISSUES, MAX_PHASES, MAX_TOKENS

__all__ = ["BIGINT_MAX", "IDENTIFIER", "IDENTIFIER_RULE", "INT_MAX", "MAX_ISSUES", "MAX_PHASES", "MAX_TOKENS"]
