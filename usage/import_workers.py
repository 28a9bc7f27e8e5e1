"""Entry points of the worker processes that import large usage files.

The workers are spawned, not forked: a forked child would inherit the parent's open database
connection and talk over its socket. So this module imports nothing from Django at load time; each
child sets Django up itself, pointed at the parent's database and models config.
"""

import os

# Settings a child must share with its parent (tests and callers may have changed them at run time).
SHARED_SETTINGS = ("AUTOPACK_MODELS_CONFIG",)


def start(database: dict, shared: dict) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autopack_site.settings")
    from django.conf import settings

    settings.DATABASES["default"] = database
    for name, value in shared.items():
        setattr(settings, name, value)
    import django

    django.setup()


def import_lines(batch):
    from usage.recording import import_lines as run

    return run(batch)
