"""`manage.py check` reports every problem of config/models.yaml with its key path."""

from django.core import checks

from routing.config import ConfigError, get_config


@checks.register("autopack")
def check_models_config(app_configs=None, **kwargs):
    try:
        config = get_config()
    except ConfigError as exc:
        return [checks.Error(f"{path}: {reason}", obj=exc.source, id="autopack.E001") for path, reason in exc.problems]
    return [checks.Warning(text, obj=config.source, id="autopack.W001") for text in config.warnings]
