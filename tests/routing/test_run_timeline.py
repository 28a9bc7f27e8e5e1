"""The run's timeline, read against the calls LlmService made and the moves and controls that were sent."""

import datetime as dt
import re

import pytest

from autopack_site import clock
from notes.services import add_note
from routing.llm_service import RunPaused
from tests.conftest import plan
from usage.models import LlmUsageEvent

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
MESSAGES = [{"role": "user", "content": "hello"}]


def at(minutes):
    return clock.frozen_at(T0 + dt.timedelta(minutes=minutes))


def test_the_timeline_lists_moves_controls_notes_and_calls_in_time_order(service, provider, api, settings, tmp_path):
    settings.AUTOPACK_NOTES_FILE = str(tmp_path / "notes.md")
    with at(0):
        api.start(plan(tiers=(("T1", 2),)))
    with at(1):
        api.move("run-1", "P1", "EXECUTING")
    with at(2):
        first = service.complete("builder", None, "medium", MESSAGES, run_id="run-1", phase_id="P1")
    with at(3):
        add_note(text="Keep the schema", run_id="run-1", author="ana")
    with at(4):
        api.post("/runs/run-1/control", {"action": "pause", "reason": "reading", "by": "ana"})
    with at(5), pytest.raises(RunPaused):
        service.complete("builder", None, "medium", MESSAGES, run_id="run-1", phase_id="P1")
    with at(6):
        api.post("/runs/run-1/control", {"action": "resume", "by": "ana"})
    with at(7):
        second = service.complete("auditor", None, "medium", MESSAGES, run_id="run-1", phase_id="P1")
    with at(7.5):
        api.move("run-1", "P1", "FAILED")
    with at(8):
        api.post("/runs/run-1/phases/P1/control", {"action": "retry", "reason": "flaky", "by": "bob"})
    with at(9):
        api.post("/runs/run-1/control", {"action": "cancel", "reason": "wrong branch", "by": "bob"})

    response = api.get("/runs/run-1/timeline")
    assert response.status_code == 200
    body = response.json()
    assert body["truncated"] is False
    seen = [(e["at"][11:16], e["kind"], e["what"], e["by"], e["reason"]) for e in body["entries"]]
    call = "{} call to gpt-4o (openai): 1,500 tokens, $0.0060, ok"
    assert seen == [
        ("10:00", "run", "run started", "executor", None),
        ("10:01", "state", "phase P1: QUEUED → EXECUTING", "executor", None),
        ("10:01", "state", "run: RUN_CREATED → PHASE_EXECUTION", "executor", None),
        ("10:02", "call", call.format("builder"), "builder", None),
        (
            "10:03",
            "note",
            "note: Keep the schema (delivered to auditor call " + second.request_id + " (gpt-4o))",
            "ana",
            None,
        ),
        ("10:04", "control", "pause run", "ana", "reading"),
        ("10:06", "control", "resume run", "ana", None),
        ("10:07", "call", call.format("auditor"), "auditor", None),
        ("10:07", "state", "phase P1: EXECUTING → FAILED", "executor", None),
        ("10:08", "control", "retry phase P1: FAILED → QUEUED", "bob", "flaky"),
        ("10:09", "control", "cancel run: PHASE_EXECUTION → DONE_FAILED_REQUIRES_HUMAN_REVIEW", "bob", "wrong branch"),
    ]
    calls = [e for e in body["entries"] if e["kind"] == "call"]
    assert len(calls) == LlmUsageEvent.objects.filter(run_id="run-1").count() == len(provider.requests) == 2
    assert first.request_id != second.request_id


def test_the_run_page_shows_the_timeline_in_the_same_order(service, api, client):
    with at(0):
        api.start(plan(tiers=(("T1", 1),)))
    with at(1):
        api.post("/runs/run-1/control", {"action": "pause", "reason": "look", "by": "ana"})
    with at(2):
        api.post("/runs/run-1/control", {"action": "resume", "by": "ana"})
    with at(3):
        api.move("run-1", "P1", "COMPLETE")
    page = client.get("/dashboard/runs/run-1/").content.decode()
    timeline = page[page.index("data-timeline") :]
    kinds = re.findall(r'<li data-kind="(\w+)">', timeline)
    assert kinds == ["run", "control", "control", "state", "state", "state"]
    assert timeline.index("pause run") < timeline.index("resume run") < timeline.index("phase P1: QUEUED → COMPLETE")
    assert "run: PHASE_EXECUTION → DONE_SUCCESS" in timeline and "by server" in timeline


def test_the_timeline_of_an_unknown_run_is_404(api):
    response = api.get("/runs/nope/timeline")
    assert response.status_code == 404 and response.json()["error"] == "Run 'nope' not found"
