import pytest

from core.settings import DEFAULT_DATABASE_URL, Settings, SettingsError, section
from services.complaints import ComplaintSettings


def test_defaults_are_the_embedded_setup():
    settings = Settings.from_env({})
    assert settings.env == "development" and settings.database_url == DEFAULT_DATABASE_URL
    assert settings.embedded_broker and settings.secret_key


def test_values_are_read_and_typed():
    settings = Settings.from_env(
        {
            "CRM_ENV": "production",
            "CRM_SECRET_KEY": "s" * 32,
            "CRM_REDIS_URL": "redis://r:6379/0",
            "CRM_DATABASE_URL": "postgres://u@db/crm",
            "CRM_TOKEN_TTL_MINUTES": "30",
            "CRM_LOG_JSON": "false",
            "PATH": "/usr/bin",
            "CRM_TEST_DATABASE_URL": "ignored by the app",
        }
    )
    assert settings.production and not settings.embedded_broker
    assert settings.token_ttl_minutes == 30 and settings.log_json is False


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"CRM_DATABSE_URL": "sqlite://x"}, "unknown setting CRM_DATABSE_URL"),
        ({"CRM_ENV": "staging"}, "CRM_ENV must be one of"),
        ({"CRM_TOKEN_TTL_MINUTES": "ten"}, "must be a whole number"),
        ({"CRM_LOG_JSON": "maybe"}, "must be true or false"),
        ({"CRM_DATABASE_URL": "mysql://x"}, "CRM_DATABASE_URL must be"),
        ({"CRM_REDIS_URL": "http://x"}, "CRM_REDIS_URL must be"),
        ({"CRM_ENV": "production"}, "CRM_SECRET_KEY must be set"),
        ({"CRM_ADMIN_USERNAME": "root"}, "must be set together"),
        ({"CRM_ADMIN_USERNAME": "root", "CRM_ADMIN_PASSWORD": "short"}, "at least 12"),
        ({"CRM_WORKER_THREADS": "0"}, "CRM_WORKER_THREADS"),
        ({"CRM_SLA_MONITOR_MINUTES": "0"}, "CRM_SLA_MONITOR_MINUTES must be between 1 and 1440"),
        ({"CRM_SLA_MONITOR_MINUTES": "often"}, "CRM_SLA_MONITOR_MINUTES must be a whole number"),
    ],
)
def test_bad_settings_stop_start_up_with_one_line(environ, fragment):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(environ)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_secrets_stay_out_of_repr():
    settings = Settings.from_env(
        {
            "CRM_SECRET_KEY": "super-secret-value",
            "CRM_ADMIN_USERNAME": "root",
            "CRM_ADMIN_PASSWORD": "very-secret-password",
        }
    )
    assert "super-secret-value" not in repr(settings) and "very-secret-password" not in repr(settings)


def test_a_domain_declares_its_own_settings_next_to_its_code():
    assert Settings.from_env({}).of(ComplaintSettings).sla_monitor_minutes == 5
    assert Settings.from_env({"CRM_SLA_MONITOR_MINUTES": "7"}).of(ComplaintSettings).sla_monitor_minutes == 7
    # Settings made in code (tests) without the section get its defaults.
    assert Settings().of(ComplaintSettings) == ComplaintSettings()
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"CRM_NO_SUCH": "1"})
    assert "CRM_SLA_MONITOR_MINUTES" in str(error.value)  # the known settings include every domain's


def test_two_domains_cannot_declare_the_same_setting():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Clash:
        sla_monitor_minutes: int = 1

    with pytest.raises(ValueError, match="exists already"):
        section(Clash)
