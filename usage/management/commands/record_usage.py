import gc
import queue
import sys
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from autopack_site.errors import DomainError
from usage.events import REPORTED_FIELDS
from usage.recording import BatchResult, read_lines, record_usage_events, write_events

BATCH_LINES = 10_000
BOM = b"\xef\xbb\xbf"
# Exit codes of a file import (CommandError.returncode); 1 is also Django's code for any other command
# error (unreadable file, bad flags).
SOME_REJECTED = 1
DATABASE_FAILED = 3


class Command(BaseCommand):
    help = (
        "Record LLM usage: one event from flags, or many from a JSON Lines file (--file PATH, or - for "
        "stdin). Bad lines are reported and skipped; good ones are kept. A line without request_id needs "
        "created_at: its idempotency key is derived from its figures and time, so importing the same file "
        f"again counts nothing twice. Exit code 0 when every line was recorded or was a duplicate, "
        f"{SOME_REJECTED} when any line was rejected, {DATABASE_FAILED} when the database failed and the "
        "import stopped (batches before the failure are kept; run the same file again to finish)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", help="JSON Lines file of events, or - for standard input")
        parser.add_argument("--provider")
        parser.add_argument("--model")
        parser.add_argument("--role", help="builder, auditor or agent:<name>")
        parser.add_argument("--run-id")
        parser.add_argument("--phase-id")
        parser.add_argument("--prompt-tokens", type=int)
        parser.add_argument("--completion-tokens", type=int)
        parser.add_argument("--total-tokens", type=int)
        parser.add_argument("--cached-prompt-tokens", type=int)
        parser.add_argument("--reasoning-tokens", type=int)
        parser.add_argument("--latency-ms", type=int)
        parser.add_argument("--status", choices=["ok", "error"])
        parser.add_argument("--request-id")
        parser.add_argument("--at", help="when the call was made, ISO-8601 (default: now)")

    def handle(self, *args, **options):
        if options["file"]:
            return self._import_file(options["file"])
        return self._record_one(options)

    def _record_one(self, options):
        fields = {key: options[key] for key in REPORTED_FIELDS if options[key] is not None}
        if options["at"]:
            fields["created_at"] = options["at"]
        try:
            result = record_usage_events([fields], atomic_batch=True)
        except DomainError as exc:
            details = "; ".join(f"{k}: {v}" for k, v in exc.details.items())
            raise CommandError(f"{exc.message}: {details}" if details else exc.message) from None
        self.stdout.write("Recorded 1 event." if result.imported else "Duplicate: already recorded, nothing changed.")

    def _import_file(self, path):
        try:
            # Bytes, not text: parse_json decodes each line strictly and reports bad UTF-8 per line.
            stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        self.totals = BatchResult()
        # Each batch makes tens of thousands of short-lived objects: collections that walk everything
        # loaded at start-up again and again cost more than the import's own work.
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        self.started = time.monotonic()
        self.lines_read = 0
        failure = None
        try:
            with stream, _Importer(self._collect) as importer:
                batch: list[tuple[int, bytes]] = []
                for number, line in enumerate(stream, start=1):
                    if number == 1 and line.startswith(BOM):
                        # Some editors on Windows start UTF-8 files with a byte-order mark.
                        line = line[len(BOM) :]  # noqa: PLW2901
                    if line.strip():
                        batch.append((number, line))
                    if len(batch) >= BATCH_LINES:
                        importer.submit(batch, number)
                        batch = []
                    self.lines_read = number
                if batch:
                    importer.submit(batch, self.lines_read)
        except DatabaseError as exc:
            failure = exc
        for number, reason in sorted(self.totals.rejected):
            self.stderr.write(f"line {number}: {reason}")
        if failure is not None:
            first_line = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
            self.stderr.write(
                f"Import stopped: the database failed ({first_line}). The counts below are what was recorded "
                "before it; run the same file again to finish."
            )
        elapsed = time.monotonic() - self.started
        self.stdout.write(
            f"Imported {self.totals.imported}, duplicates skipped {self.totals.duplicates}, "
            f"rejected {len(self.totals.rejected)} ({self.lines_read} lines in {elapsed:.1f} s)."
        )
        if failure is not None:
            raise CommandError("the import stopped at a database failure", returncode=DATABASE_FAILED)
        if self.totals.rejected:
            raise CommandError(f"{len(self.totals.rejected)} line(s) rejected (listed above)", returncode=SOME_REJECTED)

    def _collect(self, result: BatchResult, last_line: int) -> None:
        self.totals.imported += result.imported
        self.totals.duplicates += result.duplicates
        self.totals.rejected.extend(result.rejected)
        rate = last_line / max(time.monotonic() - self.started, 1e-6)
        self.stderr.write(f"… {last_line} lines done, {self.totals.imported} imported ({rate:,.0f} lines/s)")


class _Importer:
    """Reads and checks each batch in this thread while a writer thread records the one before it.

    Reading is Python work; recording mostly waits on PostgreSQL, and psycopg lets go of the GIL while
    it waits, so the two overlap. The writer has its own connection and takes one batch at a time from
    a queue that holds one more: memory stays flat on any file size. SQLite allows one writer at a
    time, and a test's open transaction is invisible to other connections, so both import inline.
    """

    def __init__(self, collect):
        self.collect = collect
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.writer = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self.batches: queue.Queue = queue.Queue(maxsize=1)
            self.failure: BaseException | None = None
            self.writer = threading.Thread(target=self._write_batches, name="record_usage writer", daemon=True)
            self.writer.start()

    def submit(self, batch, last_line: int) -> None:
        events, checked = read_lines(batch)
        if self.writer is None:
            self.collect(write_events(events, checked, atomic_batch=False), last_line)
            return
        self._collect_done()
        if self.failure is not None:
            raise self.failure
        self.batches.put((events, checked, last_line))

    def _write_batches(self) -> None:
        try:
            while (item := self.batches.get()) is not None:
                events, checked, last_line = item
                self.results.put((write_events(events, checked, atomic_batch=False), last_line))
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, which raises it
            self.failure = exc
            # Unblocks a reader waiting to put the next batch.
            while self.batches.get() is not None:
                pass
        finally:
            connection.close()

    def _collect_done(self) -> None:
        while not self.results.empty():
            self.collect(*self.results.get())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.writer is not None:
            self.batches.put(None)
            self.writer.join()
            # Every batch that finished counts, even after one failed: its events are recorded.
            self._collect_done()
            if self.failure is not None and exc[0] is None:
                raise self.failure
