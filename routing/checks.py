"""Problems of config/models.yaml, with their key paths, as system-check warnings.

Warnings, not errors: an error would stop `migrate`, the server and `record_usage`, and usage must
never be refused for a config problem. `manage.py check` (routing/management/commands/check.py)
fails when there are any.
"""

from django.core import checks

from routing.config import ConfigError, get_config


@checks.register("autopack")
def check_models_config(app_configs=None, **kwargs):
    try:
        config = get_config()
    except ConfigError as exc:
        return [
            checks.Warning(
                f"{path}: {reason}",
                hint="routing refuses calls until this is fixed",
                obj=exc.source,
                id="autopack.W002",
            )
            for path, reason in exc.problems
        ]
    return [checks.Warning(text, obj=config.source, id="autopack.W001") for text in config.warnings]
