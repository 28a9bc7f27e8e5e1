import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from autopack_site.demo import (
    DEMO_RUN_ID,
    advance_demo_run,
    load_demo_run,
    load_demo_usage_history,
    remove_demo_data,
)
from runs.models import Run


class Command(BaseCommand):
    help = (
        "Load a demo run (3 tiers, 12 phases, mixed states and issues); --live then advances it. Demo data never "
        "counts in a quota or a real total; --remove deletes all of it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--run-id", default=DEMO_RUN_ID, help=f"demo run id (default {DEMO_RUN_ID})")
        parser.add_argument("--if-empty", action="store_true", help="load only when there are no runs at all")
        parser.add_argument("--live", action="store_true", help="advance the run a step at a time")
        parser.add_argument("--interval", type=float, default=3.0, help="seconds between live steps")
        parser.add_argument("--remove", action="store_true", help="delete every demo run and demo call, and stop")

    def handle(self, *args, run_id, if_empty, live, interval, remove, **options):
        if remove:
            removed = remove_demo_data()
            self.stdout.write(
                f"Removed {removed.runs} demo run(s) and {removed.events} demo call(s); real figures unchanged."
            )
            return
        if if_empty and not settings.AUTOPACK_DEMO:
            self.stdout.write("AUTOPACK_DEMO is off; no demo data loaded.")
            return
        if if_empty and Run.objects.exists():
            self.stdout.write("Runs exist already; no demo data loaded.")
            return
        if not run_id.startswith("demo-"):
            raise CommandError("A demo run id starts with 'demo-' so the dashboard labels it as demo data.")
        run = Run.objects.filter(run_id=run_id).first()
        if run is None:
            if not Run.objects.filter(is_demo=True).exists():
                load_demo_usage_history()
            run = load_demo_run(run_id)
            self.stdout.write(f"Loaded demo run {run_id} ({run.state}).")
        else:
            self.stdout.write(f"Demo run {run_id} exists ({run.state}).")
        self.stdout.write(f"Open http://localhost:8000/dashboard/runs/{run_id}/")
        if not live:
            return
        if run.is_terminal:
            raise CommandError(f"Run {run_id} is finished; pass --run-id demo-<new name> for a fresh one.")
        try:
            while (phase := advance_demo_run(run_id)) is not None:
                self.stdout.write(f"{phase.phase_id}: {phase.state}  (run {phase.run.state})")
                time.sleep(interval)
        except KeyboardInterrupt:
            return
        self.stdout.write(self.style.SUCCESS(f"Run {run_id} finished."))
