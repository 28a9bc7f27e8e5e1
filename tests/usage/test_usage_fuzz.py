import io
import json

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autopack_site import clock
from autopack_site.errors import DomainError
from autopack_site.strict_json import parse_json
from routing.config import pricing_catalog
from tests.usage.conftest import event
from usage.events import REPORTED_FIELDS, EventInvalid, parse_event, parse_line
from usage.models import LlmUsageEvent, UsageBucket

pytestmark = pytest.mark.django_db

SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=12)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = [*REPORTED_FIELDS, "created_at", "input_tokens", "output_tokens", "cache_read_input_tokens"]
LIKELY = st.sampled_from(
    ["gpt-4o", "openai", "builder", "agent:x", "ok", "error", 0, 10, -1, 2**63, "2026-01-01T00:00:00Z"]
)
EVENTS = st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS, LIKELY | VALUES))
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)


@FUZZ
@given(body=EVENTS | st.fixed_dictionaries({"events": st.lists(EVENTS, max_size=3)}) | VALUES)
def test_ingest_answers_every_body_with_a_status_we_mean(api, models_config, body):
    before = (LlmUsageEvent.objects.count(), UsageBucket.objects.count())
    response = api.post("/api/usage", body)
    assert response.status_code in (200, 201, 400, 409, 415), response.content
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "details"}
        assert (LlmUsageEvent.objects.count(), UsageBucket.objects.count()) == before


@FUZZ
@given(lines=st.lists(EVENTS.map(json.dumps) | st.text(max_size=30) | st.just(json.dumps(event())), max_size=6))
def test_the_file_import_survives_any_lines_and_keeps_the_good_ones(tmp_path_factory, models_config, lines):
    path = tmp_path_factory.mktemp("fuzz") / "u.jsonl"
    path.write_text(
        "\n".join(line.replace("\n", " ") for line in lines) + "\n", encoding="utf-8", errors="surrogatepass"
    )
    before = LlmUsageEvent.objects.count()
    out = io.StringIO()
    try:
        call_command("record_usage", f"--file={path}", stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        assert exc.returncode == 1
    imported = int(out.getvalue().split("Imported ")[1].split(",")[0])
    assert LlmUsageEvent.objects.count() == before + imported


def _full_parse(line: bytes, catalog, now):
    try:
        return parse_event(parse_json(line), catalog=catalog, now=now)
    except (DomainError, EventInvalid) as exc:
        return type(exc), str(exc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None)
@given(
    line=EVENTS.map(lambda fields: json.dumps(fields, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    | st.builds(lambda: json.dumps(event()).encode())
    | st.binary(max_size=40)
)
def test_the_quick_line_parse_gives_what_the_full_parse_gives(models_config, line):
    """parse_line either steps aside (None) or returns the very event, or raises the very error, of the full path."""
    catalog, now = pricing_catalog(), clock.now()
    full = _full_parse(line, catalog, now)
    try:
        quick = parse_line(line, catalog=catalog, now=now)
    except EventInvalid as exc:
        assert full == (EventInvalid, str(exc))
        return
    if quick is not None:
        assert quick == full


def test_a_common_line_takes_the_quick_way_and_an_escaped_one_does_not(models_config):
    catalog, now = pricing_catalog(), clock.now()
    common = json.dumps(event(request_id="r-1")).encode()
    assert parse_line(common, catalog=catalog, now=now) == parse_event(json.loads(common), catalog=catalog, now=now)
    escaped = json.dumps(event(request_id="r-\u00e9")).encode()
    assert b"\\u" in escaped
    assert parse_line(escaped, catalog=catalog, now=now) is None
