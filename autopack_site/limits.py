"""Limits every request and report keeps, written once: request models, services and the OpenAPI document read them."""

import re

BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
# Figures an executor reports are bounded so that the sums over a run's phases fit their columns.
MAX_TOKENS = 10**12
MAX_ISSUES = 100_000
MAX_PHASES = 10_000

# Run, tier and phase ids name pages and files, so they keep to a safe alphabet.
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+-]*")
IDENTIFIER_RULE = "may hold only letters, digits and _ . : @ + - (not first)"

# Text lengths.
NAME_CHARS = 200
KEY_CHARS = 100
DESCRIPTION_CHARS = 10_000
EVIDENCE_REFS = 100
EVIDENCE_REF_CHARS = 500
# Why a person paused, cancelled or moved something; and the name they give.
REASON_CHARS = 2000
ACTOR_CHARS = 150
# A run's dollar budget: whole cents up to a billion, kept to four decimal places.
MAX_BUDGET_USD = 10**9

# How many items one request may carry.
MAX_TIERS = 10_000
MAX_ISSUES_PER_RESULT = 1000
MAX_USAGE_EVENTS = 10_000
