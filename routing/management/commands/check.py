from django.core.management.base import CommandError
from django.core.management.commands.check import Command as DjangoCheck

from routing.config import ConfigError, get_config


class Command(DjangoCheck):
    help = DjangoCheck.help + " Fails when config/models.yaml has problems (each listed with its key path)."

    def handle(self, *app_labels, **options):
        super().handle(*app_labels, **options)
        try:
            get_config()
        except ConfigError as exc:
            raise CommandError(f"{exc.source} has {len(exc.problems)} problem(s); see the warnings above.") from None
