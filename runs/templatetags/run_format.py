"""Formatting for people: token counts, durations, bar widths, and what each control does."""

from django import template

from runs.states import PHASE_ACTIONS

register = template.Library()


@register.filter
def tokens(value) -> str:
    """1234567 → '1.23M', 45300 → '45.3K', 950 → '950'."""
    if value is None:
        return "—"
    value = int(value)
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if abs(value) >= size:
            text = f"{value / size:.2f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return str(value)


@register.filter
def duration(seconds) -> str:
    """Seconds as '2h 05m', '3m 20s' or '45s'; an em dash when unknown."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@register.filter
def bar_width(percent) -> str:
    """A percentage clamped to 0–100 as an SVG width, with a dot whatever the locale."""
    value = max(0.0, min(100.0, float(percent or 0)))
    return f"{value:.1f}"


@register.filter
def phase_actions(state: str) -> list[str]:
    """The person's actions that apply to a phase in `state` (retry, skip, approve), as the services rule."""
    return [action for action, (applies_to, _) in PHASE_ACTIONS.items() if state in applies_to]


# What each control does, said in its confirmation dialog before anything happens.
CONTROL_TEXT = {
    "pause": "LlmService refuses this run's calls until it is resumed. The run keeps its state; "
    "executors polling the control endpoint are told to pause.",
    "resume": "The run's calls go through again.",
    "cancel": "The run finishes as DONE_FAILED_REQUIRES_HUMAN_REVIEW (“cancelled: <your reason>”) and refuses "
    "every later call and update. This cannot be undone.",
    "retry": "The failed phase goes back to QUEUED, for the executor to run again.",
    "skip": "The phase is marked SKIPPED and counts as done.",
    "approve": "The phase waiting at GATE is marked COMPLETE.",
}


@register.filter
def control_text(action: str) -> str:
    return CONTROL_TEXT[action]
