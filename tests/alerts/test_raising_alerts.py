import datetime as dt

import pytest

from alerts.models import Alert
from alerts.sweep import raise_due_alerts
from autopack_site import clock
from routing.services import put_in_cooldown
from runs.models import Run
from tests.conftest import plan
from tests.usage.conftest import NOW, event
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db


def spend(tokens: int, request_id: str, **fields):
    call = event(prompt_tokens=tokens, completion_tokens=0, request_id=request_id, **fields)
    assert record_usage_events([call], atomic_batch=True).imported == 1


def test_a_provider_is_alerted_once_at_80_and_once_at_90_percent_of_its_quota(models_config):
    with clock.frozen_at(NOW):
        spend(790, "a")
        raise_due_alerts()
        assert not Alert.objects.exists()
        spend(20, "b")
        raise_due_alerts()
        raise_due_alerts()
        spend(100, "c")
        raise_due_alerts()
    alerts = Alert.objects.filter(kind=Alert.Kind.QUOTA).order_by("threshold")
    assert [(a.subject, a.threshold) for a in alerts] == [("openai day", 80), ("openai day", 90)]
    assert {a.window_start for a in alerts} == {dt.datetime(2026, 3, 10, tzinfo=dt.UTC)}
    assert "openai has used 910 of its daily cap of 1,000 tokens (91%)" in alerts[1].message


def test_a_run_is_alerted_at_80_and_100_percent_of_its_token_cap_and_when_it_fails(api):
    with clock.frozen_at(NOW):
        api.start(plan(tiers=(("T1", 1),), token_cap=1000))
        assert api.move("run-1", "P1", "EXECUTING", tokens_used=850).status_code == 200
        raise_due_alerts()
        assert api.move("run-1", "P1", "FAILED", tokens_used=1000).status_code == 200
        raise_due_alerts()
        raise_due_alerts()
    kinds = sorted((a.kind, a.threshold) for a in Alert.objects.all())
    assert kinds == [("run_failed", 0), ("run_tokens", 80), ("run_tokens", 100)]


def test_a_run_past_its_time_limit_is_alerted_once(api):
    with clock.frozen_at(NOW):
        api.start(plan(max_duration_minutes=30))
        assert api.move("run-1", "P1", "EXECUTING").status_code == 200
    for minutes in (29, 31, 45):
        with clock.frozen_at(NOW + dt.timedelta(minutes=minutes)):
            raise_due_alerts()
    [alert] = Alert.objects.filter(kind=Alert.Kind.RUN_TIME)
    assert alert.subject == "run-1" and "time limit of 30 minutes" in alert.message


def test_a_provider_put_in_cooldown_is_alerted_once_per_cooldown():
    with clock.frozen_at(NOW):
        put_in_cooldown(provider="openai", reason="429 Too Many Requests")
        put_in_cooldown(provider="openai", reason="429 again")
    with clock.frozen_at(NOW + dt.timedelta(hours=1)):
        put_in_cooldown(provider="openai", reason="503")
    alerts = Alert.objects.filter(kind=Alert.Kind.COOLDOWN).order_by("raised_at")
    assert [a.message.split(": ", 1)[1] for a in alerts] == ["429 Too Many Requests", "503"]


def test_demo_runs_raise_no_alerts(api, client):
    with clock.frozen_at(NOW):
        api.start(plan(token_cap=1000))
        assert api.move("run-1", "P1", "EXECUTING", tokens_used=990).status_code == 200
    Run.objects.update(is_demo=True)
    with clock.frozen_at(NOW + dt.timedelta(hours=1)):
        assert raise_due_alerts() == 0
