"""A run's timeline: its state changes, the controls people used, its notes and its LLM calls, in time order.

Read from the rows the services write as they make each change (RunEvent, HumanNote, LlmUsageEvent),
so the timeline cannot disagree with what happened: there is no second log.
"""

import datetime as dt
from dataclasses import dataclass

from notes.models import HumanNote
from runs.models import Run, RunEvent
from runs.states import STATE_CHANGE
from usage.models import LlmUsageEvent

# The newest entries of each kind read for one timeline; the page says when there are more.
TIMELINE_LIMIT = 300
# Same-moment entries read in the order things happen: a person's action, the moves it caused, the calls.
KIND_ORDER = {"run": 0, "control": 1, "state": 2, "note": 3, "call": 4}


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    kind: str
    phase_id: str
    what: str
    by: str
    reason: str = ""

    def as_json(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "phase_id": self.phase_id or None,
            "what": self.what,
            "by": self.by,
            "reason": self.reason or None,
        }


@dataclass(frozen=True)
class Timeline:
    entries: list[Entry]
    # True when a kind had more than TIMELINE_LIMIT entries: the oldest are left out.
    truncated: bool


def run_timeline(run: Run, *, limit: int = TIMELINE_LIMIT) -> Timeline:
    """The run's history, oldest first: at most `limit` of the newest entries of each kind, then merged."""
    events = list(RunEvent.objects.filter(run=run).order_by("-created_at", "-id")[:limit])
    notes = list(HumanNote.objects.filter(run=run).order_by("-created_at", "-id")[:limit])
    calls = list(LlmUsageEvent.objects.filter(run_id=run.run_id).order_by("-created_at", "-id")[:limit])
    keyed = [((run.created_at, 0), Entry(run.created_at, "run", "", "run started", "executor"))]
    keyed += [((e.created_at, e.pk), _event_entry(e)) for e in events]
    keyed += [((n.created_at, n.pk), _note_entry(n)) for n in notes]
    keyed += [((c.created_at, c.pk), _call_entry(c)) for c in calls]
    keyed.sort(key=lambda item: (item[0][0], KIND_ORDER[item[1].kind], item[0][1]))
    truncated = any(len(rows) == limit for rows in (events, notes, calls))
    return Timeline([entry for _, entry in keyed], truncated)


def _event_entry(event: RunEvent) -> Entry:
    target = f"phase {event.phase_id}" if event.phase_id else "run"
    move = f"{event.from_state} → {event.to_state}" if event.to_state else ""
    if event.action == STATE_CHANGE:
        return Entry(event.created_at, "state", event.phase_id, f"{target}: {move}", event.actor, event.reason)
    what = f"{event.action} {target}" + (f": {move}" if move else "")
    return Entry(event.created_at, "control", event.phase_id, what, event.actor, event.reason)


def _note_entry(note: HumanNote) -> Entry:
    delivered = f" (delivered to {note.delivered_to})" if note.delivered_at else " (not delivered yet)"
    return Entry(note.created_at, "note", "", f"note: {note.text}{delivered}", note.author or "a person")


def _call_entry(call: LlmUsageEvent) -> Entry:
    cost = "unpriced" if call.cost_usd is None else f"${call.cost_usd:.4f}"
    what = f"{call.role} call to {call.model} ({call.provider}): {call.total_tokens:,} tokens, {cost}, {call.status}"
    return Entry(call.created_at, "call", call.phase_id, what, call.role)
