"""The usage CSV: every column a spreadsheet could run as a formula is exported as text."""

import csv
import io

import pytest

from usage import recording
from usage.views import csv_safe

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_that_starts_a_formula_gets_a_leading_quote(start):
    assert csv_safe(f"{start}cmd|' /C calc'!A0") == f"'{start}cmd|' /C calc'!A0"


@pytest.mark.parametrize("value", ["gpt-4o", "", 12, None, "a=b"])
def test_other_cells_are_unchanged(value):
    assert csv_safe(value) == value


def test_every_text_column_of_the_download_is_defused(client, models_config):
    recording.record_usage(
        provider='=HYPERLINK("x")',
        model="@SUM(1+1)",
        role="agent:-planner",
        run_id="run-1",
        phase_id="P1",
        prompt_tokens=10,
        completion_tokens=5,
        request_id="-1+1",
    )
    response = client.get("/dashboard/usage/events.csv?period=day")
    header, row = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    cells = dict(zip(header, row, strict=True))
    # Provider names are stored in lower case.
    assert cells["provider"] == '\'=hyperlink("x")'
    assert cells["model"] == "'@SUM(1+1)"
    assert cells["run_id"] == "run-1"
    assert cells["request_id"] == "'-1+1"
    assert cells["role"] == "agent:-planner"
    assert cells["prompt_tokens"] == "10"
