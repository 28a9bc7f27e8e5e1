from django.core.management.base import BaseCommand, CommandError

from notes.services import export_notes, notes_file


class Command(BaseCommand):
    help = "Rewrite AUTOPACK_NOTES_FILE from the notes in the database (after the file was lost or unwritable)."

    def handle(self, *args, **options):
        try:
            count = export_notes()
        except OSError as exc:
            raise CommandError(f"Cannot write {notes_file()}: {exc.strerror or exc}") from None
        self.stdout.write(f"Wrote {count} notes to {notes_file()}.")
