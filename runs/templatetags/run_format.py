"""Formatting of figures for people: token counts, durations, bar widths."""

from django import template

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
