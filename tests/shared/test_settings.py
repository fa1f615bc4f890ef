"""Settings: per-service prefixes, the common prefix, .env files, and failing loudly at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.goals.settings import GoalsSettings
from services.sessions.settings import SessionsSettings
from shared.settings import describe_settings_error, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the machine running the tests, nor from a .env in the checkout."""
    for name in list(os.environ):
        if name.upper().startswith(("GOALS_", "SESSIONS_", "NOTIFICATIONS_", "FOLLOWTHROUGH_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_the_service_prefix_wins_over_the_common_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWTHROUGH_KAFKA_BOOTSTRAP_SERVERS", "broker-common:9092")
    monkeypatch.setenv("FOLLOWTHROUGH_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("GOALS_KAFKA_BOOTSTRAP_SERVERS", "broker-goals:9092")

    goals, sessions = GoalsSettings(), SessionsSettings()

    assert goals.kafka_bootstrap_servers == "broker-goals:9092"
    assert sessions.kafka_bootstrap_servers == "broker-common:9092"
    assert goals.log_level == sessions.log_level == "DEBUG"
    assert goals.port == 8001
    assert sessions.port == 8002


def test_a_dotenv_file_is_read_and_the_environment_wins_over_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "GOALS_PORT=9101\nFOLLOWTHROUGH_KAFKA_TOPIC_PREFIX=dev.\nGOALS_LOG_LEVEL=WARNING\n"
    )
    monkeypatch.setenv("GOALS_LOG_LEVEL", "ERROR")

    settings = GoalsSettings()

    assert settings.port == 9101
    assert settings.kafka_topic_prefix == "dev."
    assert settings.topic("goals") == "dev.goals"
    assert settings.log_level == "ERROR"


def test_database_url_defaults_to_a_sqlite_file_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOALS_DATA_DIR", str(tmp_path / "d"))
    settings = GoalsSettings()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'goals'}.db"
    assert settings.is_sqlite


def test_an_invalid_setting_is_described_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOALS_PORT", "notanumber")
    monkeypatch.setenv("FOLLOWTHROUGH_LOG_LEVEL", "LOUD")
    with pytest.raises(ValidationError) as caught:
        GoalsSettings()
    message = describe_settings_error(GoalsSettings, caught.value)
    assert "GOALS_PORT: Input should be a valid integer" in message
    assert "FOLLOWTHROUGH_LOG_LEVEL: Input should be" in message


def test_production_refuses_default_secrets_and_generated_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOALS_ENVIRONMENT", "production")
    with pytest.raises(SystemExit) as stopped:
        load_settings(GoalsSettings)
    assert stopped.value.code == 2
    assert (
        "GOALS_LINK_SIGNING_SECRET must be set explicitly in production" in capsys.readouterr().err
    )

    monkeypatch.setenv("GOALS_LINK_SIGNING_SECRET", "a-real-secret-from-the-vault")
    with pytest.raises(SystemExit):
        load_settings(GoalsSettings)
    assert "GOALS_PRIVACY_KEY must be set explicitly in production" in capsys.readouterr().err

    monkeypatch.setenv("GOALS_PRIVACY_KEY", "another-real-secret-from-the-vault")
    with pytest.raises(SystemExit):
        load_settings(GoalsSettings)
    assert "GOALS_AUTH_JWKS or GOALS_AUTH_KEYS_FILE" in capsys.readouterr().err

    monkeypatch.setenv("FOLLOWTHROUGH_AUTH_KEYS_FILE", "/etc/followthrough/jwks.json")
    assert load_settings(GoalsSettings).environment == "production"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GOALS_PORT", "notanumber", "GOALS_PORT: Input should be a valid integer"),
        ("FOLLOWTHROUGH_PORT", "99999", "FOLLOWTHROUGH_PORT: Input should be less than or equal"),
        (
            "GOALS_LOG_FORMAT",
            "xml",
            "GOALS_LOG_FORMAT: Input should be 'json', 'console' or 'auto'",
        ),
    ],
)
def test_the_service_process_stops_at_start_naming_the_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    env = {
        name: text
        for name, text in os.environ.items()
        if not name.upper().startswith(("GOALS_", "FOLLOWTHROUGH_"))
    }
    env[variable] = value
    env["GOALS_DATA_DIR"] = str(tmp_path / "data")
    finished = subprocess.run(
        [sys.executable, "-m", "services.goals"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert expected in finished.stderr
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "data").exists()  # it stopped before doing anything
