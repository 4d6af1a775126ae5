from __future__ import annotations

import subprocess

import pytest

from shopify_app.db.engine import make_engine
from shopify_app.settings import ConfigError, Settings
from tests.support.env import API_SECRET, ENCRYPTION_KEY, PREVIOUS_API_SECRET, chorus_command, chorus_env


def test_a_complete_environment_is_parsed_with_defaults() -> None:
    settings = Settings.from_env({k: v for k, v in chorus_env("").items() if k != "DATABASE_URL"})

    assert settings.database_url == "sqlite:///chorus.db"
    assert settings.port == 8000
    assert settings.webhook_max_body_bytes == 8 * 1024 * 1024
    assert settings.encryption_keys == (ENCRYPTION_KEY,)
    assert settings.webhook_secrets == (API_SECRET, PREVIOUS_API_SECRET)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example:5432/chorus", "postgresql+psycopg://u:p@db.example:5432/chorus"),
        ("postgresql://u@localhost/chorus", "postgresql+psycopg://u@localhost/chorus"),
        ("sqlite:////var/data/chorus.db", "sqlite:////var/data/chorus.db"),
    ],
)
def test_herokus_database_url_forms_are_accepted(given: str, expected: str) -> None:
    assert Settings.from_env(chorus_env(given)).database_url == expected


def test_every_problem_is_reported_at_once() -> None:
    env = chorus_env("", SHOPIFY_API_KEY="", ENCRYPTION_KEY="not-a-key", PORT="eighty", APP_URL="http://chorus.example")

    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)

    problems = "\n".join(raised.value.problems)
    assert "SHOPIFY_API_KEY is required" in problems
    assert "ENCRYPTION_KEY: key #1 is not a Fernet key" in problems
    assert "PORT: expected a whole number, got 'eighty'" in problems
    assert "APP_URL: expected an https:// URL" in problems
    assert len(raised.value.problems) == 4


def test_the_link_signing_key_is_never_the_shopify_secret() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY must differ from SHOPIFY_API_SECRET"):
        Settings.from_env(chorus_env("", SECRET_KEY=API_SECRET * 3, SHOPIFY_API_SECRET=API_SECRET * 3))


def test_rotating_keys_are_all_kept_newest_first() -> None:
    newer = "3q2Tq7i4x2iEJwZf3FkMWv9V2mD5n1x8yYb0m8zXw2E="
    settings = Settings.from_env(chorus_env("", ENCRYPTION_KEY=f"{newer}, {ENCRYPTION_KEY}"))
    assert settings.encryption_keys == (newer, ENCRYPTION_KEY)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    text = repr(Settings.from_env(chorus_env("")))
    assert API_SECRET not in text
    assert ENCRYPTION_KEY not in text


def test_the_command_stops_at_start_with_a_clear_message() -> None:
    env = {k: v for k, v in chorus_env("sqlite:///unused.db").items() if k != "SHOPIFY_API_SECRET"}
    result = subprocess.run([*chorus_command(), "worker", "--once"], env=env, capture_output=True, text=True)

    assert result.returncode == 2
    assert "SHOPIFY_API_SECRET is required" in result.stderr


def test_no_environment_variable_turns_on_demo_mode() -> None:
    env = chorus_env("", DEMO_MODE="1", CHORUS_DEMO="1", demo_mode="true")
    assert Settings.from_env(env).demo_mode is False


def test_email_settings_go_together() -> None:
    with pytest.raises(ConfigError, match="EMAIL_FROM is required when SMTP_URL is set"):
        Settings.from_env(chorus_env("", SMTP_URL="smtp://127.0.0.1:1025"))
    with pytest.raises(ConfigError, match="SMTP_URL: expected smtp:// or smtps://"):
        Settings.from_env(chorus_env("", SMTP_URL="mail.example:25", EMAIL_FROM="a@b.example"))
    settings = Settings.from_env(chorus_env("", SMTP_URL="smtp://127.0.0.1:1025", EMAIL_FROM="Shop <a@b.example>"))
    assert settings.email_from == "a@b.example"


def test_the_database_pooler_is_named_in_the_url_every_engine_is_built_from() -> None:
    assert Settings.from_env(chorus_env("postgres://u@db.example/chorus")).database_pooler == "none"
    assert Settings.from_env(chorus_env("postgres://u@db.example/chorus", DATABASE_POOLER="none")).database_url == (
        "postgresql+psycopg://u@db.example/chorus"
    )

    pooled = Settings.from_env(chorus_env("postgres://u:p%40ss@db.example:6432/chorus", DATABASE_POOLER="PgBouncer"))

    assert pooled.database_pooler == "pgbouncer"
    assert pooled.database_url == "postgresql+psycopg://u:p%40ss@db.example:6432/chorus?chorus_pooler=pgbouncer"
    engine = make_engine(pooled.database_url)
    try:  # the key is Chorus's: never sent to the server, which would refuse it
        assert (
            engine.url.render_as_string(hide_password=False) == "postgresql+psycopg://u:p%40ss@db.example:6432/chorus"
        )
        assert engine.dialect.create_connect_args(engine.url)[1]["password"] == "p@ss"
    finally:
        engine.dispose()
    with pytest.raises(ConfigError, match="DATABASE_POOLER: expected none or pgbouncer, got 'pgpool'"):
        Settings.from_env(chorus_env("postgres://u@db.example/chorus", DATABASE_POOLER="pgpool"))
    with pytest.raises(ConfigError, match="DATABASE_POOLER=pgbouncer needs a PostgreSQL DATABASE_URL"):
        Settings.from_env(chorus_env("sqlite:///chorus.db", DATABASE_POOLER="pgbouncer"))


def test_channel_providers_default_to_their_real_hosts_and_may_point_at_a_local_fake() -> None:
    defaults = Settings.from_env(chorus_env(""))
    assert defaults.twilio_api_base_url == "https://api.twilio.com"
    assert defaults.whatsapp_api_base_url == "https://graph.facebook.com"
    assert defaults.sendgrid_api_base_url == "https://api.sendgrid.com"

    local = Settings.from_env(
        chorus_env("", TWILIO_API_BASE_URL="http://127.0.0.1:9100/", WHATSAPP_API_VERSION="v24.0")
    )
    assert local.twilio_api_base_url == "http://127.0.0.1:9100"
    assert local.whatsapp_api_version == "v24.0"
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(chorus_env("", SENDGRID_API_BASE_URL="sendgrid", WHATSAPP_API_VERSION="23"))
    problems = "\n".join(raised.value.problems)
    assert "SENDGRID_API_BASE_URL: expected an http(s) URL" in problems
    assert "WHATSAPP_API_VERSION: expected a Graph API version like v23.0" in problems
