"""Problems of config/models.yaml, with their key paths, as system checks tagged "models_config".

A broken file is a warning, not an error: an error would stop `migrate`, the server and
`record_usage`, and usage must never be refused for a config problem. Keys we do not use are only
notes. So `manage.py check --tag models_config --fail-level WARNING` exits non-zero exactly when the
file is broken.
"""

from django.core import checks

from routing.config import ConfigError, get_config

TAG = "models_config"


@checks.register(TAG)
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
    return [checks.Info(text, obj=config.source, id="autopack.I001") for text in config.warnings]
