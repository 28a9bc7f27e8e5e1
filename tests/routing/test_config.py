import io
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from routing.config import ConfigError, get_config, load_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SHIPPED = Path(__file__).resolve().parent.parent.parent / "config" / "models.yaml"


def test_the_shipped_config_loads_cleanly():
    config = load_config(SHIPPED)
    assert config.warnings == ()
    assert {"openai", "anthropic", "google"} <= set(config.provider_quotas)


def test_an_original_autopack_file_loads_unchanged():
    config = load_config(FIXTURES / "autopack_models_original.yaml")
    assert config.provider_quotas["openai"].weekly_token_cap == 50_000_000
    assert config.model("gpt-4-turbo-2024-04-09").provider == "openai"


def test_the_files_models_override_and_extend_the_built_in_catalog(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "models:\n"
        "  gpt-4o: {provider: openai, input_per_mtok: 1, output_per_mtok: 2}\n"
        "  house-model: {provider: openai, input_per_mtok: 0.5, output_per_mtok: 1, cached_input_per_mtok: 0.1}\n"
    )
    config = load_config(path)
    assert config.model("gpt-4o").input_per_mtok == Decimal(1)
    assert config.model("house-model").cost(prompt=1_000_000, completion=0, cached=500_000) == Decimal("0.3")
    assert config.model("claude-sonnet-4-5").output_per_mtok == Decimal(15)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("models: [unclosed", "line 1"),
        ("provider_quotas:\n  openai: {soft_limit_ratio: 0}\n", "provider_quotas.openai.soft_limit_ratio"),
        ("provider_quotas:\n  openai: {soft_limit_ratio: 1.5}\n", "provider_quotas.openai.soft_limit_ratio"),
        ("provider_quotas:\n  openai: {weekly_token_cap: -5}\n", "provider_quotas.openai.weekly_token_cap"),
        ("provider_quotas:\n  nowhere: {weekly_token_cap: 5}\n", "provider_quotas.nowhere"),
        ("models:\n  x: {provider: mystery, input_per_mtok: 1, output_per_mtok: 1}\n", "models.x.provider"),
        ("models:\n  x: {provider: openai, output_per_mtok: 1}\n", "models.x.input_per_mtok"),
        ("- just\n- a list\n", "(root)"),
    ],
)
def test_problems_are_reported_with_their_key_path(tmp_path, text, path):
    file = tmp_path / "m.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(file)
    assert any(p.startswith(path) for p, _ in error.value.problems), error.value.problems


def test_keys_we_do_not_use_are_warnings_not_errors(tmp_path):
    file = tmp_path / "m.yaml"
    file.write_text("model_aliases: {sonnet: claude-sonnet-4-5}\nreplan: {trigger_threshold: 2}\n")
    assert len(load_config(file).warnings) == 2


def test_the_config_is_reloaded_when_the_file_changes(tmp_path, settings):
    file = tmp_path / "m.yaml"
    shutil.copy(SHIPPED, file)
    settings.AUTOPACK_MODELS_CONFIG = str(file)
    first = get_config()
    assert get_config() is first
    file.write_text(file.read_text().replace("weekly_token_cap: 10000000", "weekly_token_cap: 12345"))
    os.utime(file, ns=(1, 1))
    assert get_config().provider_quotas["anthropic"].weekly_token_cap == 12345


def test_check_reports_a_broken_file_and_fails(tmp_path, settings):
    file = tmp_path / "m.yaml"
    file.write_text("provider_quotas:\n  openai: {soft_limit_ratio: 2}\n")
    settings.AUTOPACK_MODELS_CONFIG = str(file)
    err = io.StringIO()
    with pytest.raises(SystemCheckError) as error:
        call_command("check", "--tag", "models_config", "--fail-level", "WARNING", stdout=io.StringIO(), stderr=err)
    assert "provider_quotas.openai.soft_limit_ratio: must be a number in (0, 1]" in str(error.value)
    assert "1 issue" in str(error.value)


def test_django_check_lists_the_problems_without_failing(tmp_path, settings):
    """`manage.py check` stays Django's own: it shows the file's problems as warnings and passes."""
    file = tmp_path / "m.yaml"
    file.write_text("provider_quotas:\n  openai: {soft_limit_ratio: 2}\n")
    settings.AUTOPACK_MODELS_CONFIG = str(file)
    err = io.StringIO()
    call_command("check", stdout=io.StringIO(), stderr=err)
    assert "(autopack.W002) provider_quotas.openai.soft_limit_ratio: must be a number in (0, 1]" in err.getvalue()


def test_check_passes_when_the_file_only_has_keys_we_do_not_use(tmp_path, settings):
    file = tmp_path / "m.yaml"
    file.write_text("model_aliases: {sonnet: claude-sonnet-4-5}\n")
    settings.AUTOPACK_MODELS_CONFIG = str(file)
    err = io.StringIO()
    call_command("check", "--tag", "models_config", "--fail-level", "WARNING", stdout=io.StringIO(), stderr=err)
    assert "(autopack.I001) model_aliases: not used by Autopack Dashboard; ignored" in err.getvalue()


@pytest.mark.django_db
def test_a_broken_file_does_not_stop_migrate_or_recording(tmp_path, settings):
    file = tmp_path / "m.yaml"
    file.write_text("models: [")
    settings.AUTOPACK_MODELS_CONFIG = str(file)
    # migrate, the server and record_usage stop only on serious check messages; these are warnings.
    assert [m.id for m in run_checks(tags=["models_config"])] == ["autopack.W002"]
    assert not [m for m in run_checks() if m.is_serious()]
    call_command("migrate", verbosity=0)
    out = io.StringIO()
    call_command(
        "record_usage", "--model=gpt-4o", "--role=builder", "--total-tokens=5", stdout=out, stderr=io.StringIO()
    )
    assert "Recorded 1 event" in out.getvalue()


def test_a_later_autopack_file_loads_with_warnings_for_what_we_do_not_use():
    """A shortened copy of Autopack's newer models.yaml: more sections, extra keys, newer models."""
    config = load_config(FIXTURES / "autopack_models_latest.yaml")
    assert config.routing.complexity_models["high"]["auditor"] == "claude-sonnet-4-5"
    assert config.routing.category_models["tests"] == {"builder": "claude-sonnet-4-5"}
    warned = "\n".join(config.warnings)
    for key in (
        "llm_routing_policies",
        "model_aliases",
        "complexity_models.high.escalation_builder",
        "category_models.security_auth_change.secondary_auditor",
        "quota_enforcement",
    ):
        assert key in warned
