from django.core.management.base import BaseCommand, CommandError

from apikeys.services import create_api_key
from autopack_site.errors import DomainError


class Command(BaseCommand):
    help = "Create a named API key and print its secret (shown this once; only a digest is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who will use the key: an executor, an agent, a person")

    def handle(self, *args, name, **options):
        try:
            created = create_api_key(name=name)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"API key {created.key.name!r} created. Its secret, shown only now:")
        self.stdout.write(created.secret)
