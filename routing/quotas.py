"""Where each provider stands against its quota and its cooldown, as the router sees it.

Reads are cached for a few seconds in each process: the aggregation is fast (a few ms at 10 million
events) but select() runs on every LLM call and must stay under a millisecond. A stale read of a few
seconds is harmless; the cache holds no state of its own.
"""

import datetime as dt
import threading
import time
from dataclasses import dataclass, field

from autopack_site import clock
from routing.config import ModelsConfig
from routing.models import ProviderCooldown
from usage.aggregation import PERIODS, provider_totals

CACHE_SECONDS = 5.0
CAP_FIELDS = {"day": "daily_token_cap", "week": "weekly_token_cap", "month": "monthly_token_cap"}
ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly"}


@dataclass
class WindowUse:
    window: str
    used: int
    cap: int

    @property
    def share(self) -> float:
        return self.used / self.cap if self.cap else 0.0


@dataclass
class ProviderState:
    provider: str
    windows: list[WindowUse] = field(default_factory=list)
    soft_limit_ratio: float = 0.8
    cooldown_until: dt.datetime | None = None
    cooldown_reason: str = ""

    @property
    def exhausted_window(self) -> WindowUse | None:
        return next((w for w in self.windows if w.used >= w.cap), None)

    @property
    def soft_window(self) -> WindowUse | None:
        return next((w for w in self.windows if w.used > w.cap * self.soft_limit_ratio), None)

    @property
    def tightest_share(self) -> float:
        return max((w.share for w in self.windows), default=0.0)

    def is_cooling(self, now: dt.datetime) -> bool:
        return self.cooldown_until is not None and self.cooldown_until > now

    def describe(self, w: WindowUse) -> str:
        return (
            f"{self.provider} has used {w.used:,} of its {ADJECTIVE[w.window]} cap of {w.cap:,} tokens ({w.share:.0%})"
        )

    def figures(self) -> dict:
        return {w.window: {"used": w.used, "cap": w.cap} for w in self.windows}


_lock = threading.Lock()
_cached: tuple[float, int, dict[str, ProviderState]] | None = None


def provider_states(config: ModelsConfig, *, fresh: bool = False) -> dict[str, ProviderState]:
    """Every provider's usage in each window that has a configured cap, and its cooldown."""
    global _cached
    key = id(config)
    with _lock:
        if not fresh and _cached and _cached[1] == key and time.monotonic() - _cached[0] < CACHE_SECONDS:
            return _cached[2]
    states = {name: ProviderState(name) for name in config.providers}
    for name, quota in config.provider_quotas.items():
        states.setdefault(name, ProviderState(name)).soft_limit_ratio = quota.soft_limit_ratio
    # Only configured caps route: the panel's estimated caps are for display.
    for period in PERIODS:
        capped = {n: getattr(q, CAP_FIELDS[period]) for n, q in config.provider_quotas.items()}
        capped = {n: cap for n, cap in capped.items() if cap}
        if not capped:
            continue
        used = provider_totals(period)
        for name, cap in capped.items():
            states[name].windows.append(WindowUse(period, used.get(name, 0), cap))
    for cooldown in ProviderCooldown.objects.filter(until__gt=clock.now()):
        state = states.setdefault(cooldown.provider, ProviderState(cooldown.provider))
        state.cooldown_until, state.cooldown_reason = cooldown.until, cooldown.reason
    with _lock:
        _cached = (time.monotonic(), key, states)
    return states


def forget_cached_states() -> None:
    """Drop this process's cached reads (after a cooldown is set here, or in tests)."""
    global _cached
    with _lock:
        _cached = None
