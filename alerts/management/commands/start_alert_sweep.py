from django.core.management.base import BaseCommand

from alerts.sweep import start_sweeping


class Command(BaseCommand):
    help = "Queue the first of the minute sweeps that raise alerts, unless a chain of them is alive."

    def handle(self, *args, **options):
        if start_sweeping():
            self.stdout.write("Alert sweep queued: a worker (manage.py db_worker) runs it every minute.")
        else:
            self.stdout.write("Alert sweep already scheduled.")
