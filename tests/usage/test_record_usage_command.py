import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from tests.usage.conftest import event
from usage.models import LlmUsageEvent, UsageBucket

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("record_usage", *args, stdout=out, stderr=err)
    except CommandError as exc:
        # What `manage.py` exits with: Django's run_from_argv calls sys.exit(exc.returncode).
        code = exc.returncode
    return code, out.getvalue(), err.getvalue()


def test_one_event_from_flags(models_config):
    code, out, _ = run(
        "--provider=openai",
        "--model=gpt-4o",
        "--role=builder",
        "--run-id=r1",
        "--phase-id=p1",
        "--prompt-tokens=10",
        "--completion-tokens=5",
        "--request-id=q1",
        "--at=2026-01-02T03:04:05Z",
    )
    assert code == 0 and "Recorded 1 event" in out
    stored = LlmUsageEvent.objects.get()
    assert (stored.total_tokens, stored.run_id, stored.created_at.isoformat()) == (
        15,
        "r1",
        "2026-01-02T03:04:05+00:00",
    )
    _, again, _ = run(
        "--provider=openai",
        "--model=gpt-4o",
        "--role=builder",
        "--run-id=r1",
        "--phase-id=p1",
        "--prompt-tokens=10",
        "--completion-tokens=5",
        "--request-id=q1",
    )
    assert "Duplicate" in again and LlmUsageEvent.objects.count() == 1


def test_a_bad_flag_event_is_a_clear_error(models_config):
    with pytest.raises(CommandError, match="role"):
        call_command("record_usage", "--model=gpt-4o", "--role=boss", "--total-tokens=3")


def write_lines(tmp_path, lines):
    path = tmp_path / "usage.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_file_with_bad_lines_keeps_the_good_ones_and_reports_each_bad_one(tmp_path, models_config):
    path = write_lines(
        tmp_path,
        [
            json.dumps(event(request_id="a")),
            "{not json",
            json.dumps(event(request_id="b", cached_prompt_tokens=500)),
            "",
            json.dumps(event(request_id="c")),
            '{"model": "gpt-4o", "role": "builder", "total_tokens": NaN}',
        ],
    )
    code, out, err = run(f"--file={path}")
    assert code == 1
    assert "Imported 2, duplicates skipped 0, rejected 3" in out
    assert "line 2: not valid JSON" in err
    assert "line 3: cached_prompt_tokens" in err
    assert "line 6: not valid JSON" in err
    assert sorted(LlmUsageEvent.objects.values_list("request_id", flat=True)) == ["a", "c"]


def test_rerunning_the_same_file_imports_nothing_twice(tmp_path, models_config):
    path = write_lines(tmp_path, [json.dumps(event(request_id=f"id-{i}")) for i in range(50)])
    assert run(f"--file={path}")[0] == 0
    code, out, _ = run(f"--file={path}")
    assert code == 0 and "Imported 0, duplicates skipped 50, rejected 0" in out
    assert LlmUsageEvent.objects.count() == 50


def test_a_changed_line_on_replay_is_rejected_not_overwritten(tmp_path, models_config):
    run(f"--file={write_lines(tmp_path, [json.dumps(event(request_id='k'))])}")
    code, out, err = run(f"--file={write_lines(tmp_path, [json.dumps(event(request_id='k', prompt_tokens=1))])}")
    assert code == 1 and "line 1: request_id 'k' was recorded with other figures" in err
    assert LlmUsageEvent.objects.get().prompt_tokens == 100


def test_events_from_standard_input(monkeypatch, models_config):
    first, second = event(created_at="2026-01-01T00:00:00Z"), event(created_at="2026-01-01T00:00:01Z")
    lines = (json.dumps(first) + "\n" + json.dumps(second) + "\n").encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(lines)))
    code, out, err = run("--file=-")
    assert code == 0 and "Imported 2" in out and "lines done" in err


def test_a_missing_file_is_a_clear_error(tmp_path, models_config):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("record_usage", f"--file={tmp_path / 'nope.jsonl'}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres_only
def test_a_large_file_is_imported_by_the_writer_thread_exactly(tmp_path, models_config):
    """Five batches read in one thread and written in another, a repeat across batches, a conflict and a bad line."""
    lines = [json.dumps(event(request_id=f"big-{i}", run_id="r", phase_id=f"p{i % 7}")) for i in range(45_000)]
    lines[30_000] = lines[5]  # line 6 again, in another batch: a duplicate
    lines[40_000] = json.dumps(event(request_id="big-7", prompt_tokens=1))  # other figures: a conflict
    lines[44_000] = "{broken"
    code, out, err = run(f"--file={write_lines(tmp_path, lines)}")
    assert code == 1, err[-2000:]
    assert "Imported 44997, duplicates skipped 1, rejected 2" in out
    # Batches are written in file order: the first big-7 line is kept, the later one reported.
    assert "line 40001: request_id 'big-7' was recorded with other figures" in err
    assert "line 44001: not valid JSON" in err
    assert LlmUsageEvent.objects.count() == 44_997
    assert UsageBucket.objects.filter(size="day").aggregate(s=Sum("calls"))["s"] == 44_997


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres_only
def test_a_database_failure_in_the_writer_thread_stops_the_import_and_keeps_the_batches_before_it(
    tmp_path, models_config, monkeypatch
):
    from django.db import OperationalError

    from usage.management.commands import record_usage

    real, calls = record_usage.write_events, []

    def fail_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OperationalError("the server closed the connection")
        return real(*args, **kwargs)

    monkeypatch.setattr(record_usage, "write_events", fail_third_batch)
    monkeypatch.setattr(record_usage, "BATCH_LINES", 10)
    lines = [json.dumps(event(request_id=f"w{i}")) for i in range(100)]
    code, out, err = run(f"--file={write_lines(tmp_path, lines)}")
    assert code == record_usage.DATABASE_FAILED
    assert "Import stopped: the database failed (the server closed the connection)" in err
    assert "Imported 20, duplicates skipped 0, rejected 0" in out
    assert LlmUsageEvent.objects.count() == 20


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres_only
def test_a_copy_cut_short_by_a_racing_writer_is_retried_on_a_clean_connection(models_config, monkeypatch):
    from usage import recording

    recording.record_usage_events([event(request_id="raced")], atomic_batch=True)
    real, calls = recording._stored_figures, []

    def miss_once(ids):
        # The first look misses the row, as when the other writer had not committed yet.
        calls.append(ids)
        return {} if len(calls) == 1 else real(ids)

    monkeypatch.setattr(recording, "_stored_figures", miss_once)
    batch = [event(request_id=f"batch-{i}") for i in range(1500)] + [event(request_id="raced")]
    result = recording.record_usage_events(batch, atomic_batch=False)
    assert (result.imported, result.duplicates, len(calls)) == (1500, 1, 2)
    assert LlmUsageEvent.objects.count() == 1501


def test_reimporting_lines_without_request_id_counts_nothing_twice(tmp_path, models_config):
    """Their idempotency key is derived from their figures and created_at."""
    lines = [json.dumps(event(created_at=f"2026-01-01T00:00:{i:02d}Z", run_id="r")) for i in range(5)]
    path = write_lines(tmp_path, lines)
    assert run(f"--file={path}")[0] == 0
    code, out, _ = run(f"--file={path}")
    assert code == 0 and "Imported 0, duplicates skipped 5, rejected 0" in out
    assert LlmUsageEvent.objects.count() == 5
    assert UsageBucket.objects.filter(size="day").aggregate(s=Sum("calls"))["s"] == 5


def test_a_line_without_request_id_or_created_at_is_refused_with_the_reason(tmp_path, models_config):
    code, _, err = run(f"--file={write_lines(tmp_path, [json.dumps(event())])}")
    assert code == 1 and "line 1: needs request_id or created_at" in err
    assert LlmUsageEvent.objects.count() == 0


def test_a_caller_may_not_use_the_prefix_of_derived_ids(tmp_path, models_config):
    code, _, err = run(f"--file={write_lines(tmp_path, [json.dumps(event(request_id='derived:abc'))])}")
    assert code == 1 and "line 1: request_id: may not start with 'derived:'" in err


def test_a_byte_order_mark_on_the_first_line_is_accepted(tmp_path, models_config):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(event(request_id="bom")).encode() + b"\n")
    code, out, err = run(f"--file={path}")
    assert (code, err.count("line 1:")) == (0, 0)
    assert "Imported 1, duplicates skipped 0, rejected 0" in out


def test_a_database_failure_stops_the_import_with_its_own_exit_code_and_the_summary_so_far(
    tmp_path, models_config, monkeypatch
):
    from django.db import OperationalError

    from usage.management.commands import record_usage

    real, calls = record_usage.write_events, []

    def fail_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("terminating connection due to administrator command\nmore detail")
        return real(*args, **kwargs)

    monkeypatch.setattr(record_usage, "write_events", fail_second_batch)
    monkeypatch.setattr(record_usage, "BATCH_LINES", 2)
    lines = [json.dumps(event(request_id=f"o{i}")) for i in range(3)] + ["{bad"] + [json.dumps(event(request_id="o9"))]
    code, out, err = run(f"--file={write_lines(tmp_path, lines)}")
    assert code == record_usage.DATABASE_FAILED != record_usage.SOME_REJECTED
    stopped = [line for line in err.splitlines() if line.startswith("Import stopped")]
    assert stopped == [
        "Import stopped: the database failed (terminating connection due to administrator command). "
        "The counts below are what was recorded before it; run the same file again to finish."
    ]
    assert "Imported 2, duplicates skipped 0, rejected 0" in out
    assert LlmUsageEvent.objects.count() == 2
