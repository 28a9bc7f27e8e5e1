import io
import json

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.usage.conftest import event
from usage.events import REPORTED_FIELDS
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
