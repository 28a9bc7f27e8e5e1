import sys
import time

from django.core.management.base import BaseCommand, CommandError

from autopack_site.api import parse_json
from autopack_site.errors import DomainError
from usage.recording import BatchResult, record_usage_events

BATCH_LINES = 20_000


class Command(BaseCommand):
    help = (
        "Record LLM usage: one event from flags, or many from a JSON Lines file (--file PATH, or - for stdin). "
        "Bad lines are reported and skipped; good ones are kept. Exit code 1 when any line was rejected."
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
        fields = {
            key: options[key]
            for key in (
                "provider",
                "model",
                "role",
                "run_id",
                "phase_id",
                "prompt_tokens",
                "completion_tokens",
                "total_tokens",
                "cached_prompt_tokens",
                "reasoning_tokens",
                "latency_ms",
                "status",
                "request_id",
            )
            if options[key] is not None
        }
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
            stream = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        totals = BatchResult()
        started = time.monotonic()
        lines_read = 0
        with stream:
            batch: list[dict] = []
            numbers: list[int] = []
            for number, line in enumerate(stream, start=1):
                lines_read = number
                if not line.strip():
                    continue
                try:
                    item = parse_json(line.encode("utf-8", errors="surrogateescape"))
                except DomainError as exc:
                    totals.rejected.append((number, f"not valid JSON: {exc.details.get('body', exc.message)}"))
                    continue
                batch.append(item)
                numbers.append(number)
                if len(batch) >= BATCH_LINES:
                    self._flush(batch, numbers, totals, started, lines_read)
                    batch, numbers = [], []
            if batch:
                self._flush(batch, numbers, totals, started, lines_read)
        for number, reason in sorted(totals.rejected):
            self.stderr.write(f"line {number}: {reason}")
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Imported {totals.imported}, duplicates skipped {totals.duplicates}, rejected {len(totals.rejected)} "
            f"({lines_read} lines in {elapsed:.1f} s)."
        )
        if totals.rejected:
            sys.exit(1)

    def _flush(self, batch, numbers, totals, started, lines_read):
        result = record_usage_events(batch, atomic_batch=False)
        totals.imported += result.imported
        totals.duplicates += result.duplicates
        # Positions in the batch map back to the file's line numbers.
        totals.rejected.extend((numbers[position], reason) for position, reason in result.rejected)
        rate = lines_read / max(time.monotonic() - started, 1e-6)
        self.stderr.write(f"… {lines_read} lines read, {totals.imported} imported ({rate:,.0f} lines/s)")
