from __future__ import annotations

from pathlib import Path

import pytest

from pieces_integration.config import ConfigError, load_settings


def test_defaults_are_the_embedded_single_machine_setup(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.embedded
    assert settings.server.port == 8080
    assert settings.sqlalchemy_url.startswith("sqlite+aiosqlite:///")
    assert settings.sqlalchemy_url.endswith("/data/pieces-integration.db")
    assert settings.pieces.rate_limit.requests_per_minute == 100
    assert settings.api.rate_limit_per_minute == 1200


def test_environment_beats_file_beats_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "app.yaml"
    config.write_text(
        "server:\n  port: 9000\n  cors_origins: ['https://a.example']\n"
        "sync:\n  interval_seconds: 12\n  batch_size: 7\n"
        "monitoring:\n  log_level: error\n"
    )
    monkeypatch.setenv("CONFIG_FILE", str(config))
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("PIECES_INTEGRATION_SYNC__BATCH_SIZE", "9")
    monkeypatch.setenv("CORS_ORIGINS", "https://b.example, https://c.example")
    settings = load_settings()
    assert settings.server.port == 9100  # env over file
    assert settings.sync.interval_seconds == 12  # file over default
    assert settings.sync.batch_size == 9  # nested env over file
    assert settings.sync.max_retries == 3  # default
    assert settings.monitoring.log_level == "error"
    assert settings.server.cors_origins == ["https://b.example", "https://c.example"]


def test_app_env_selects_config_directory_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "test.yaml").write_text("sync:\n  interval_seconds: 1\n")
    monkeypatch.setenv("APP_ENV", "test")
    assert load_settings().sync.interval_seconds == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("sqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
    ],
)
def test_database_urls_are_mapped_to_async_drivers(
    url: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    settings = load_settings()
    assert settings.sqlalchemy_url == expected
    assert settings.embedded is False


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("DATABASE_URL", "not a url", "database_url"),
        ("DATABASE_URL", "mysql://u@h/db", "database_url"),
        ("DATABASE_URL", "postgresql:///nohost", "database_url"),
        ("LOG_LEVEL", "loud", "monitoring.log_level"),
        ("PORT", "70000", "server.port"),
        ("REDIS_URL", "http://x", "redis_url"),
    ],
)
def test_invalid_values_name_the_key(
    name: str, value: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{key}: ")
    assert "\n" not in message


def test_unknown_key_in_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "app.yaml"
    config.write_text("sync:\n  intervall_seconds: 5\n")
    monkeypatch.setenv("CONFIG_FILE", str(config))
    with pytest.raises(ConfigError, match=r"sync\.intervall_seconds"):
        load_settings()


def test_production_refuses_to_start_without_an_encryption_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        load_settings()
    monkeypatch.setenv("ENCRYPTION_KEY", "k" * 44)
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_settings()
    monkeypatch.setenv("JWT_SECRET", "s" * 32)
    assert load_settings().log_format == "json"


def test_shipped_config_files_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2] / "config"
    for name in ("development", "production", "test"):
        monkeypatch.setenv("CONFIG_FILE", str(root / f"{name}.yaml"))
        monkeypatch.setenv("ENCRYPTION_KEY", "k" * 44)
        monkeypatch.setenv("JWT_SECRET", "s" * 32)
        assert load_settings().server.port == 8080


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server: [unclosed\n", r"app\.yaml: not valid YAML \("),
        ("- server\n- sync\n", r"app\.yaml: the top level must be a mapping of sections"),
        ("just a string\n", r"app\.yaml: the top level must be a mapping of sections"),
    ],
)
def test_a_broken_file_is_refused_in_one_line(
    text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "app.yaml"
    config.write_text(text)
    monkeypatch.setenv("CONFIG_FILE", str(config))
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_a_missing_config_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIG_FILE", str(tmp_path / "nowhere.yaml"))
    with pytest.raises(ConfigError, match=r"^CONFIG_FILE: .*nowhere\.yaml does not exist$"):
        load_settings()


def test_an_empty_file_means_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "app.yaml"
    config.write_text("# nothing set yet\n")
    monkeypatch.setenv("CONFIG_FILE", str(config))
    assert load_settings().server.port == 8080


def test_tenants_are_off_by_default_and_set_by_their_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = load_settings()
    assert defaults.auth.tenant_claim is None
    assert defaults.api.tenant_rate_limit_per_minute == 0
    monkeypatch.setenv("TENANT_CLAIM", "org_id")
    monkeypatch.setenv("TENANT_RATE_LIMIT_PER_MINUTE", "600")
    monkeypatch.setenv("TENANT_RATE_LIMIT_BURST", "50")
    settings = load_settings()
    assert settings.auth.tenant_claim == "org_id"
    assert (settings.api.tenant_rate_limit_per_minute, settings.api.tenant_rate_limit_burst) == (
        600,
        50,
    )
    monkeypatch.setenv("TENANT_RATE_LIMIT_PER_MINUTE", "-1")
    with pytest.raises(ConfigError, match=r"^api\.tenant_rate_limit_per_minute: "):
        load_settings()
